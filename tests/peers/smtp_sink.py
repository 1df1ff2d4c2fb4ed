"""An SMTP server for the alert tests (aiosmtpd): listens on 127.0.0.1 on a free port, prints
`listening <port>`, then one JSON line per message received: {"mail_from", "rcpt_tos",
"authenticated_as", "tls", "subject" (decoded by Python's e-mail parser), "content"}. With
--refuse ADDRESS (repeatable) it answers `550 5.1.1` to `RCPT TO` that address; with --greylist
ADDRESS (repeatable) `450 4.2.0` the first time, as a greylisting server does, and 250 after. With --user and --password it requires AUTH (PLAIN or
LOGIN, accepted over plain text) with exactly those credentials. With --cert and --key it speaks
TLS with that certificate: `--tls starttls` offers STARTTLS and refuses mail before it, `--tls tls`
speaks TLS from the first byte (port 465 style). Runs until killed.
"""

import argparse
import asyncio
import email
import email.policy
import json
import ssl
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Printer:
    def __init__(self, refuse, greylist):
        self.refuse = set(refuse)
        self.greylist = set(greylist)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 <%s>: no such user here" % address
        if address in self.greylist:
            self.greylist.discard(address)
            return "450 4.2.0 <%s>: greylisted, try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        line = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "authenticated_as": login,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "subject": str(email.message_from_bytes(envelope.content, policy=email.policy.default)["subject"]),
            "content": envelope.content.decode("utf-8", "replace"),
        }
        print(json.dumps(line), flush=True)
        return "250 OK"


def main():
    # Plain-text AUTH is what the test wants (loopback only).
    warnings.filterwarnings("ignore")
    ap = argparse.ArgumentParser()
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--tls", choices=["starttls", "tls"], default="starttls")
    ap.add_argument("--refuse", action="append", default=[])
    ap.add_argument("--greylist", action="append", default=[])
    args = ap.parse_args()
    context = None
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
    starttls = context if args.tls == "starttls" else None

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == args.user
            and auth_data.password.decode() == args.password
        )
        return AuthResult(success=ok, auth_data=auth_data)

    required = args.user is not None

    # One handler for every connection: what was greylisted is remembered across them.
    handler = Printer(args.refuse, args.greylist)

    def factory():
        return SMTP(
            handler,
            hostname="sink.test",
            authenticator=authenticator if required else None,
            auth_required=required,
            auth_require_tls=False,
            tls_context=starttls,
            require_starttls=starttls is not None,
        )

    async def serve():
        server = await asyncio.get_running_loop().create_server(
            factory, "127.0.0.1", 0, ssl=context if args.tls == "tls" else None
        )
        print("listening", server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
