"""An SMTP server for the alert tests (aiosmtpd): listens on 127.0.0.1 on a free port, prints
`listening <port>`, then one JSON line per message received: {"mail_from", "rcpt_tos",
"authenticated_as", "content"}. With --user and --password it requires AUTH (PLAIN or LOGIN,
accepted over plain text) with exactly those credentials. Runs until killed.
"""

import argparse
import asyncio
import json
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Printer:
    async def handle_DATA(self, server, session, envelope):
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        line = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "authenticated_as": login,
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
    args = ap.parse_args()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == args.user
            and auth_data.password.decode() == args.password
        )
        return AuthResult(success=ok, auth_data=auth_data)

    required = args.user is not None

    def factory():
        return SMTP(
            Printer(),
            hostname="sink.test",
            authenticator=authenticator if required else None,
            auth_required=required,
            auth_require_tls=False,
        )

    async def serve():
        server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
        print("listening", server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
