"""A BACnet/IP device for the plugin's integration tests, built on bacpypes3 (an implementation
we did not write).

    python device.py --port 47901 [--instance 599] [--no-rpm] [--no-segmentation]
                     [--max-apdu 1024] [--extra N] [--fault OBJ] [--out-of-service OBJ]
                     [--overridden OBJ]

It listens on 127.0.0.1:PORT (no broadcast socket: loopback has none) and prints
"ready 127.0.0.1:PORT" on stdout once listening. Commands on stdin change the device from its
own side, each answered with "ok ..." (or "error ...") on stdout:

    set OBJ VALUE         present value (commandable objects: the relinquish default)
    delete OBJ            removes the object
    flags OBJ normal|fault|out-of-service|overridden

OBJ is "analog-input,1" style. The objects: analog input/output/value (with units and COV
increments), binary input/output/value (with inactive/active texts), multi-state
input/output/value (with state texts); the outputs and the values ending in 1 are commandable,
analog-value,2 is not; analog-input,3 shares its name with analog-input,1. analog-input,1 and
the commandable analog-value,1 state a min and max present value.
"""

import argparse
import asyncio
import sys

from bacpypes3.app import Application
from bacpypes3.errors import UnrecognizedService
from bacpypes3.basetypes import EngineeringUnits, Reliability
from bacpypes3.local.analog import (
    AnalogInputObject,
    AnalogOutputObject,
    AnalogValueObject,
    AnalogValueObjectCmd,
)
from bacpypes3.local.binary import (
    BinaryInputObject,
    BinaryOutputObject,
    BinaryValueObjectCmd,
)
from bacpypes3.local.cmd import Commandable
from bacpypes3.local.cov import GenericCriteria
from bacpypes3.local.multistate import (
    MultiStateInputObject,
    MultiStateOutputObject,
    MultiStateValueObject,
)
from bacpypes3.primitivedata import ObjectIdentifier


class Overridable:
    """Adds the OVERRIDDEN status flag (bacpypes3 computes the others, and leaves this one 0)."""

    _overridden = False

    @property
    def statusFlags(self):
        flags = super().statusFlags
        if self._overridden:
            flags[2] = 1
        return flags

    @statusFlags.setter
    def statusFlags(self, value):
        pass


def cls(base, name):
    return type(name, (Overridable, base), {})


AI = cls(AnalogInputObject, "AI")
AO = cls(AnalogOutputObject, "AO")
AV = cls(AnalogValueObject, "AV")
AVC = cls(AnalogValueObjectCmd, "AVC")
BI = cls(BinaryInputObject, "BI")
BO = cls(BinaryOutputObject, "BO")
BVC = cls(BinaryValueObjectCmd, "BVC")
MSI = type("MSI", (Overridable, MultiStateInputObject), {"_cov_criteria": GenericCriteria})
MSO = type("MSO", (Overridable, MultiStateOutputObject), {"_cov_criteria": GenericCriteria})
MSVC = type(
    "MSVC",
    (Overridable, Commandable, MultiStateValueObject),
    {"_cov_criteria": GenericCriteria},
)


def objects(extra):
    c = EngineeringUnits
    yield AI(
        objectIdentifier="analog-input,1",
        objectName="Zone Temp",
        description="Zone temperature",
        presentValue=21.5,
        units=c.degreesCelsius,
        minPresValue=-10.0,
        maxPresValue=50.0,
        covIncrement=0.1,
        outOfService=False,
    )
    yield AI(
        objectIdentifier="analog-input,2",
        objectName="Supply RH",
        presentValue=45.0,
        units=c.percentRelativeHumidity,
        covIncrement=1.0,
        outOfService=False,
    )
    # Renamed to "Zone Temp" after it is added (bacpypes3 insists on unique names; real
    # devices do not always).
    yield AI(
        objectIdentifier="analog-input,3",
        objectName="Zone Temp (duplicate)",
        presentValue=70.7,
        units=c.degreesFahrenheit,
        covIncrement=0.1,
        outOfService=False,
    )
    yield AO(
        objectIdentifier="analog-output,1",
        objectName="Damper",
        presentValue=10.0,
        units=c.percent,
        covIncrement=0.5,
        outOfService=False,
    )
    yield AVC(
        objectIdentifier="analog-value,1",
        objectName="Setpoint",
        presentValue=22.0,
        units=c.degreesCelsius,
        minPresValue=5.0,
        maxPresValue=35.0,
        covIncrement=0.1,
        outOfService=False,
    )
    yield AV(
        objectIdentifier="analog-value,2",
        objectName="Offset",
        presentValue=0.5,
        units=c.deltaDegreesKelvin,
        covIncrement=0.1,
        outOfService=False,
    )
    yield BI(
        objectIdentifier="binary-input,1",
        objectName="Fan Status",
        presentValue="inactive",
        inactiveText="Off",
        activeText="On",
        outOfService=False,
    )
    yield BO(
        objectIdentifier="binary-output,1",
        objectName="Fan Cmd",
        presentValue="inactive",
        outOfService=False,
    )
    yield BVC(
        objectIdentifier="binary-value,1",
        objectName="Occupied",
        presentValue="active",
        outOfService=False,
    )
    yield MSI(
        objectIdentifier="multi-state-input,1",
        objectName="Mode",
        presentValue=2,
        numberOfStates=4,
        stateText=["Off", "Heat", "Cool", "Auto"],
        outOfService=False,
    )
    yield MSO(
        objectIdentifier="multi-state-output,1",
        objectName="Speed",
        presentValue=1,
        numberOfStates=3,
        stateText=["Low", "Medium", "High"],
        outOfService=False,
    )
    yield MSVC(
        objectIdentifier="multi-state-value,1",
        objectName="Season",
        presentValue=1,
        numberOfStates=2,
        stateText=["Winter", "Summer"],
        outOfService=False,
    )
    for i in range(extra):
        yield AV(
            objectIdentifier=f"analog-value,{100 + i}",
            objectName=f"Extra {i:04d} with a name long enough to fill an APDU quickly",
            presentValue=float(i),
            units=c.degreesCelsius,
            covIncrement=0.1,
            outOfService=False,
        )


def set_flags(obj, what):
    obj._overridden = what == "overridden"
    obj.outOfService = what == "out-of-service"
    obj.reliability = (
        Reliability.unreliableOther if what == "fault" else Reliability.noFaultDetected
    )


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def commands(app):
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        words = line.split()
        if not words:
            continue
        try:
            obj = app.get_object_id(ObjectIdentifier(words[1])) if len(words) > 1 else None
            if words[0] == "set" and obj is not None:
                value = words[2]
                if words[1].startswith("analog"):
                    value = float(value)
                elif words[1].startswith("multi-state"):
                    value = int(value)
                if isinstance(obj, Commandable):
                    obj.relinquishDefault = value
                    obj.recalculating()
                else:
                    obj.presentValue = value
                say(f"ok set {words[1]} {words[2]}")
            elif words[0] == "delete" and obj is not None:
                app.delete_object(obj)
                say(f"ok delete {words[1]}")
            elif words[0] == "flags" and obj is not None:
                before = obj.statusFlags
                set_flags(obj, words[2])
                # bacpypes3 computes statusFlags from these properties but only notifies COV
                # subscribers of changes to properties set directly: tell its monitors.
                for fn in obj._property_monitors["statusFlags"]:
                    fn(before, obj.statusFlags)
                say(f"ok flags {words[1]} {words[2]}")
            else:
                say(f"error unknown command or object: {line.strip()}")
        except Exception as e:  # the test reads the answer
            say(f"error {e!r}")


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--instance", type=int, default=599)
    parser.add_argument("--name", default="T3 Test Device")
    parser.add_argument("--no-rpm", action="store_true")
    parser.add_argument("--no-segmentation", action="store_true")
    parser.add_argument("--max-apdu", type=int, default=1024)
    parser.add_argument("--extra", type=int, default=0)
    parser.add_argument("--fault", action="append", default=[])
    parser.add_argument("--out-of-service", action="append", default=[])
    parser.add_argument("--overridden", action="append", default=[])
    args = parser.parse_args()

    if args.no_rpm:

        async def refuse(self, apdu):
            raise UnrecognizedService("ReadPropertyMultiple is turned off")

        Application.do_ReadPropertyMultipleRequest = refuse

    ns = argparse.Namespace(
        vendoridentifier=999,
        instance=args.instance,
        name=args.name,
        address=f"127.0.0.1:{args.port}",
        foreign=None,
        network=0,
        bbmd=None,
        ttl=30,
    )
    app = Application.from_args(ns)
    device = app.device_object
    device.vendorName = "t3000 tests"
    device.modelName = "bacpypes3 peer"
    device.maxApduLengthAccepted = args.max_apdu
    if args.no_segmentation:
        device.segmentationSupported = "noSegmentation"

    for obj in objects(args.extra):
        app.add_object(obj)
    duplicate = app.get_object_id(ObjectIdentifier("analog-input,3"))
    duplicate._app = None  # the name check is the application's
    duplicate.objectName = "Zone Temp"
    duplicate._app = app
    for what, names in (
        ("fault", args.fault),
        ("out-of-service", args.out_of_service),
        ("overridden", args.overridden),
    ):
        for name in names:
            set_flags(app.get_object_id(ObjectIdentifier(name)), what)

    # Wait until the socket is bound before telling the test.
    for _ in range(200):
        link = next(iter(app.link_layers.values()), None)
        server = getattr(link, "server", None)
        if server is not None and getattr(server, "local_transport", None) is not None:
            break
        await asyncio.sleep(0.01)
    say(f"ready 127.0.0.1:{args.port}")
    try:
        await commands(app)
    finally:
        app.close()


if __name__ == "__main__":
    asyncio.run(main())
