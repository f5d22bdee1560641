// A local SMTP server for tests of alerts: a Python script (python3's smtpd module)
// that writes its port to argv[1] once it listens, and each message it receives to
// argv[2] as one JSON object per line ({"from", "to", "data"}). The test writes it to a
// file, starts it, and stops it by PID.
#pragma once

namespace vmvault::testing {

inline constexpr char kSmtpSink[] = R"PY(
import asyncore, json, sys, warnings
warnings.simplefilter("ignore")
import smtpd

class Sink(smtpd.SMTPServer):
    def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
        with open(sys.argv[2], "a") as f:
            f.write(json.dumps({"from": mailfrom, "to": rcpttos, "data": data}) + "\n")

server = Sink(("127.0.0.1", 0), None, decode_data=True)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(server.socket.getsockname()[1]))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
asyncore.loop()
)PY";

}  // namespace vmvault::testing
