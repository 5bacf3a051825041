# A first program for `brig run`: it prints where it runs and what it may not do.
import os, socket

print(f"hello from {socket.gethostname()} as uid {os.getuid()} in {os.getcwd()}")
print("processes I can see:", sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
try:
    open("/etc/shadow")
except OSError as e:
    print("reading /etc/shadow:", e.strerror)
try:
    socket.create_connection(("127.0.0.1", 22), timeout=1)
except OSError as e:
    print("opening a TCP socket:", e.strerror)
