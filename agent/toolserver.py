"""The reference agent's tools, run inside the jail: JSON lines in on stdin, JSON lines out on stdout.

Standard library only: it runs with the jail's own /usr/bin/python3 (`-I -c`,
its source passed as an argument), never with the supervisor's packages. It
sees exactly what the jail shows; `run` goes through /bin/bash, which in the
jail is the interposer, so every command the model asks for is judged.
"""

import json
import os
import re
import signal
import subprocess
import sys

WORKSPACE = sys.argv[1] if len(sys.argv) > 1 else os.getcwd()
MAX_READ = 1 << 20


def inside(path):
    full = os.path.realpath(os.path.join(WORKSPACE, path))
    if full != WORKSPACE and not full.startswith(WORKSPACE.rstrip("/") + "/"):
        raise ValueError(f"{path} is outside the workspace {WORKSPACE}: only the workspace can be changed")
    return full


def read_file(path):
    with open(os.path.join(WORKSPACE, path), "rb") as f:
        data = f.read(MAX_READ + 1)
    if b"\0" in data[:8192]:
        raise ValueError(f"{path} is a binary file")
    text = data[:MAX_READ].decode(errors="replace")
    return text + ("\n[... truncated at 1 MiB]" if len(data) > MAX_READ else "")


def list_dir(path="."):
    full = os.path.join(WORKSPACE, path)
    return "\n".join(name + ("/" if os.path.isdir(os.path.join(full, name)) else "")
                     for name in sorted(os.listdir(full)))


def search(pattern, path="."):
    expression = re.compile(pattern)
    found = []
    for directory, subdirectories, files in os.walk(os.path.join(WORKSPACE, path)):
        subdirectories[:] = sorted(d for d in subdirectories if d not in (".git", "node_modules", "target"))
        for name in sorted(files):
            full = os.path.join(directory, name)
            try:
                with open(full, errors="strict") as f:
                    for number, line in enumerate(f, 1):
                        if expression.search(line):
                            found.append(f"{os.path.relpath(full, WORKSPACE)}:{number}:{line.rstrip()}")
                            if len(found) >= 200:
                                return "\n".join(found) + "\n[... more matches left out]"
            except (OSError, UnicodeDecodeError):
                continue
    return "\n".join(found) or "no match"


def write_file(path, content):
    full = inside(path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        f.write(content)
    return f"wrote {len(content)} characters to {path}"


def run(command, timeout="600"):
    """bash -c in its own process group, so that a timeout stops what it started too."""
    timeout = float(timeout)
    process = subprocess.Popen(["/bin/bash", "-c", command], cwd=WORKSPACE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, errors="replace",
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return f"exit status: timed out after {timeout:g} s"
    return f"exit status: {process.returncode}\n{stdout}{stderr}"


TOOLS = {"read_file": read_file, "list_dir": list_dir, "search": search, "write_file": write_file, "run": run}


def main():
    for line in sys.stdin:
        request = json.loads(line)
        try:
            result = {"ok": True, "result": TOOLS[request["tool"]](**request["args"])}
        except Exception as exc:  # noqa: BLE001 - every failure is a result the model can read
            result = {"ok": False, "result": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps({"id": request["id"], **result}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
