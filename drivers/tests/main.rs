//! Integration tests of the drivers against real peers: our simulator over real sockets and
//! pseudo-terminals, and pymodbus (a Modbus implementation we did not write) over TCP and over RTU
//! through a socat pty pair.

mod faults;
mod modes;
mod peer;
