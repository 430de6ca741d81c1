"""What a `python -c` program does, read with Python's own `ast` (never run): the commands it amounts to.

Agents run short programs (`python3 -c "import json,sys; print(json.load(sys.stdin)['x'])"`) all day. A
program whose every call is known, standard-library file and path operations, subprocesses with a literal
argv, printing and pure computation, is judged by what it does, as the equivalent commands would be:
`shutil.rmtree(os.path.expanduser('~'))` is `rm -rf ~`, `open('/etc/x', 'w')` writes /etc/x, and
`subprocess.run(['git', 'status'])` is the line `git status`. Anything else is unread, with the reason:
code built at run time (exec, eval, compile, getattr tricks, __import__, importlib), modules this table does
not know (third-party ones among them), a path only known when it runs handed to a call that deletes,
writes or renames. `confined` says whether the unread part is only what a jail confines as it confines
`python file.py`: no program started, no network reached, no native code loaded, no code built at run time
and no path only known when it runs deleted or written (see judge: jail semantics).

The source and its syntax tree are bounded (MAX_SOURCE bytes, MAX_NODES nodes); walks use explicit stacks.
"""

from __future__ import annotations

import ast
import posixpath
from collections.abc import Callable, Iterator
from typing import NamedTuple

MAX_SOURCE = 64 << 10  # bytes of program text read; a longer program is unread
MAX_NODES = 20_000  # nodes of its syntax tree

# Modules whose every function only computes, or reads what the program was handed (stdin, its arguments).
PURE_MODULES = frozenset({
    "json", "re", "math", "cmath", "datetime", "time", "collections", "collections.abc", "itertools", "functools",
    "string", "textwrap", "base64", "hashlib", "hmac", "random", "secrets", "statistics", "decimal", "fractions",
    "operator", "heapq", "bisect", "copy", "pprint", "enum", "dataclasses", "typing", "uuid", "struct", "binascii",
    "unicodedata", "difflib", "html", "shlex", "fnmatch", "glob", "csv", "calendar", "zlib", "ipaddress",
    "urllib.parse", "tomllib", "platform", "keyword", "numbers", "abc", "contextlib", "argparse", "traceback",
    "warnings", "pwd", "grp", "locale", "sysconfig", "array", "codecs", "colorsys", "graphlib", "zoneinfo",
    "errno", "stat", "types", "weakref", "inspect", "reprlib", "quopri", "getpass", "gettext",
})
# Modules known in part: what of them is pure, the rest is in CALLS or unread.
PARTLY_KNOWN = frozenset({"os", "os.path", "sys", "shutil", "subprocess", "pathlib", "io", "tempfile"})
PURE_NAMES = frozenset({
    "os.path", "os.sep", "os.linesep", "os.pathsep", "os.curdir", "os.pardir", "os.devnull", "os.name",
    "os.environ", "os.getenv", "os.getcwd", "os.getcwdb", "os.cpu_count", "os.getpid", "os.getppid", "os.getuid",
    "os.geteuid", "os.getgid", "os.getegid", "os.getlogin", "os.uname", "os.urandom", "os.fspath", "os.fsencode",
    "os.fsdecode", "os.get_terminal_size", "os.stat", "os.lstat", "os.access", "os.times", "os.isatty",
    "os.R_OK", "os.W_OK", "os.X_OK", "os.F_OK", "os.extsep", "os.altsep", "os.getloadavg", "os.umask",
    "sys.argv", "sys.exit", "sys.stdin", "sys.stdout", "sys.stderr", "sys.version", "sys.version_info",
    "sys.platform", "sys.executable", "sys.path", "sys.maxsize", "sys.byteorder", "sys.getsizeof",
    "sys.getrecursionlimit", "sys.setrecursionlimit", "sys.prefix", "sys.base_prefix", "sys.exec_prefix",
    "sys.implementation", "sys.flags", "sys.getdefaultencoding", "sys.getfilesystemencoding", "sys.hexversion",
    "sys.float_info", "sys.maxunicode", "sys.api_version", "sys.copyright", "sys.stdlib_module_names",
    "sys.builtin_module_names", "sys.exc_info", "sys.orig_argv",
    "shutil.which", "shutil.disk_usage", "shutil.get_terminal_size",
    "subprocess.PIPE", "subprocess.DEVNULL", "subprocess.STDOUT", "subprocess.CalledProcessError",
    "subprocess.TimeoutExpired", "subprocess.CompletedProcess",
    "io.StringIO", "io.BytesIO", "tempfile.gettempdir", "os.putenv", "os.unsetenv",
})
# Calls that run a command line or a program.
SUBPROCESS = frozenset({"subprocess.run", "subprocess.call", "subprocess.check_call", "subprocess.check_output",
                        "subprocess.Popen"})
SHELL_CALLS = frozenset({"os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput"})
# File calls and the command each is: operands in order (path arguments by position).
CALLS: dict[str, tuple[str, ...]] = {
    "os.remove": ("rm",), "os.unlink": ("rm",), "os.rmdir": ("rmdir",), "os.removedirs": ("rmdir",),
    "shutil.rmtree": ("rm", "-rf"), "os.makedirs": ("mkdir", "-p"), "os.mkdir": ("mkdir",),
    "os.rename": ("mv",), "os.replace": ("mv",), "os.renames": ("mv",), "shutil.move": ("mv",),
    "shutil.copy": ("cp",), "shutil.copy2": ("cp",), "shutil.copyfile": ("cp",), "shutil.copytree": ("cp", "-r"),
    "os.symlink": ("ln", "-s"), "os.link": ("ln",), "os.listdir": ("ls",), "os.scandir": ("ls",),
    "os.walk": ("ls", "-R"),
}
OPERANDS = {"mv": 2, "cp": 2, "ln": 2}  # else one
READS = frozenset({"ls", "cat"})  # a step that only reads: an unknown path in it reads something unknown
PATH_CALLS: dict[str, tuple[str, ...]] = {  # pathlib.Path methods: the command, its path last
    "read_text": ("cat",), "read_bytes": ("cat",), "write_text": ("tee",), "write_bytes": ("tee",),
    "unlink": ("rm",), "rmdir": ("rmdir",), "touch": ("touch",), "iterdir": ("ls",), "glob": ("ls",),
    "rglob": ("ls", "-R"),
}
PATH_MOVES = {"rename": ("mv",), "replace": ("mv",), "symlink_to": ("ln", "-s"), "hardlink_to": ("ln",)}
PATH_PURE = frozenset({"exists", "is_file", "is_dir", "is_symlink", "is_absolute", "stat", "lstat", "match",
                       "as_posix", "as_uri", "samefile", "relative_to", "is_relative_to", "owner", "group",
                       "name", "stem", "suffix", "suffixes", "parts", "anchor", "root", "drive", "with_suffix",
                       "with_name", "with_stem"})
PATH_SAME = frozenset({"expanduser", "resolve", "absolute"})  # the same path as far as a judge goes
PATH_TYPES = frozenset({"pathlib.Path", "pathlib.PurePath", "pathlib.PosixPath", "pathlib.PurePosixPath"})
# A method of that name on a value this reading cannot name deletes, writes, renames or runs something.
UNKNOWN_RECEIVER = frozenset({"unlink", "rmdir", "rmtree", "write_text", "write_bytes", "mkdir", "makedirs",
                              "touch", "chmod", "lchmod", "chown", "symlink_to", "hardlink_to", "link_to",
                              "rename", "kill", "terminate", "send_signal", "system", "popen", "spawn",
                              "extractall", "extract"})
PURE_BUILTINS = frozenset({
    "print", "len", "range", "str", "int", "float", "complex", "bool", "list", "dict", "set", "frozenset", "tuple",
    "bytes", "bytearray", "sorted", "reversed", "sum", "min", "max", "abs", "round", "divmod", "pow", "enumerate",
    "zip", "map", "filter", "any", "all", "repr", "ascii", "isinstance", "issubclass", "chr", "ord", "hex", "oct",
    "bin", "format", "hash", "iter", "next", "input", "type", "object", "super", "slice", "id", "callable",
    "property", "staticmethod", "classmethod", "memoryview", "Exception", "ValueError", "KeyError", "TypeError",
    "RuntimeError", "SystemExit", "StopIteration", "OSError", "IOError", "FileNotFoundError", "IndexError",
    "AttributeError", "NotImplementedError", "ZeroDivisionError", "AssertionError", "ImportError", "BaseException",
    "KeyboardInterrupt", "UnicodeDecodeError", "UnicodeEncodeError", "PermissionError", "FileExistsError",
    "IsADirectoryError", "NotADirectoryError", "ArithmeticError", "LookupError", "OverflowError", "exit", "quit",
})
# Builtins that build or reach code at run time.
DYNAMIC = frozenset({"exec", "eval", "compile", "__import__", "getattr", "setattr", "delattr", "globals", "locals",
                     "vars", "breakpoint", "help", "__builtins__", "__loader__", "__spec__"})
DUNDER_READ = frozenset({"__name__", "__version__", "__doc__", "__file__"})
# Modules that start programs, reach the network, load native code or run code built at run time.
ESCAPE_MODULES = ("socket", "ssl", "pty", "ctypes", "cffi", "multiprocessing", "concurrent", "asyncio", "http",
                  "urllib", "ftplib", "smtplib", "poplib", "imaplib", "telnetlib", "xmlrpc", "socketserver",
                  "requests", "httpx", "aiohttp", "urllib3", "websocket", "websockets", "paramiko", "fabric",
                  "pexpect", "sh", "plumbum", "invoke", "importlib", "imp", "runpy", "code", "codeop", "pickle",
                  "marshal", "shelve", "dill", "cloudpickle", "webbrowser", "pdb", "pydoc", "posix", "_posixsubprocess",
                  "builtins", "subprocess", "pip")
ESCAPE_OS = ("exec", "spawn", "fork", "posix_spawn", "kill", "popen", "system", "startfile", "dup", "pidfd",
             "setuid", "seteuid", "setgid", "chroot")


class Step(NamedTuple):
    """A command the program amounts to: its words (None for a path only known when it runs), or a line."""

    argv: tuple[str | None, ...] = ()
    line: str | None = None


class Reading(NamedTuple):
    steps: tuple[Step, ...]  # what it does, as far as read (all of it when `unread` is None)
    unread: str | None = None  # why the program is not judged by its calls alone (None: it is)
    # The unread part is what a jail confines as it confines `python file.py`: no program started, no network,
    # no code built at run time, no path only known when it runs deleted or written (`rm -rf "$X"` is asked).
    confined: bool = False


class _Path(NamedTuple):
    path: str | None  # None: a path only known when it runs


class _Unread(Exception):
    def __init__(self, reason: str, confined: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.confined = confined


def read(source: str, home: str | None) -> Reading:
    """The commands `python -c SOURCE` amounts to, or why it is unread. `home`: what `~` expands to."""
    if len(source.encode("utf-8", "surrogateescape")) > MAX_SOURCE:
        return Reading((), f"the program is longer than the {MAX_SOURCE} bytes read", False)
    try:
        tree = ast.parse(source, "<python -c>")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return Reading((), "the program does not parse as Python", False)
    try:
        reader = _Reader(tree, home)
        steps = tuple(reader.steps())
    except _Unread as unread:
        return Reading((), unread.reason, unread.confined)
    if reader.environment_changed and reader.starts_programs:
        return Reading(steps, "the program changes the environment of the programs it starts", False)
    # Read to the end: what it does is judged, and what is unread is something a jail confines.
    return Reading(steps, reader.confined_reason, reader.confined_reason is not None)


class _Reader:
    def __init__(self, tree: ast.AST, home: str | None) -> None:
        self.home = home
        self.parents: dict[int, ast.AST] = {}
        self.nodes: list[ast.AST] = []
        stack = [tree]
        while stack:
            node = stack.pop()
            self.nodes.append(node)
            if len(self.nodes) > MAX_NODES:
                raise _Unread(f"the program has more than {MAX_NODES} syntax nodes", False)
            for child in ast.iter_child_nodes(node):
                self.parents[id(child)] = node
                stack.append(child)
        self.nodes.reverse()  # roughly source order, for the order of steps
        self.names: dict[str, str] = {}  # a name bound by an import: the qualified name it stands for
        self.values: dict[str, list[ast.AST]] = {}  # a name's assigned expressions
        self.rebound: set[str] = set()  # names bound otherwise (loops, with, function arguments...)
        self.confined_reason: str | None = None  # the first thing unread that a jail confines
        self.environment_changed = False  # os.environ written (LD_PRELOAD= for the programs it starts)
        self.starts_programs = False
        for node in self.nodes:
            self._noting(self._bindings, node)

    def _noting(self, check: Callable[[ast.AST], object], node: ast.AST) -> None:
        """Run a check; what it finds unread but confined is noted and the reading goes on (a later call may
        escape), what is not confined ends it."""
        try:
            check(node)
        except _Unread as unread:
            if not unread.confined:
                raise
            self.confined_reason = self.confined_reason or unread.reason

    # -- what names stand for ------------------------------------------------------------------------------

    def _bindings(self, node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:  # every name bound first: `import torch, subprocess` binds subprocess too
                if alias.asname:
                    self.names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    self.names[top] = top
            for alias in sorted(node.names, key=lambda a: not _escapes(a.name)):  # what escapes, first
                _known_module(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level or not node.module:
                raise _Unread("the program imports relative to a package", False)
            for alias in node.names:
                if alias.name == "*":
                    raise _Unread(f"the program imports everything from {node.module}", False)
                self.names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            _known_module(node.module)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            self.values.setdefault(node.targets[0].id, []).append(node.value)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            parent = self.parents.get(id(node))
            if not (isinstance(parent, ast.Assign) and len(parent.targets) == 1):
                self.rebound.add(node.id)
        elif isinstance(node, ast.arg):
            self.rebound.add(node.arg)

    def _qualified(self, node: ast.AST) -> str | None:
        """`os.path.join` for the expression naming it, through the program's imports; None if not a name."""
        attributes: list[str] = []
        while isinstance(node, ast.Attribute):
            attributes.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name) or node.id not in self.names:
            return None
        return ".".join([self.names[node.id], *reversed(attributes)])

    def _value(self, node: ast.AST, depth: int = 0) -> str | int | _Path | None:
        """What an expression is, as far as paths go: a string, an int, a path; None when unknown."""
        if depth > 32:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, int)) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.JoinedStr):  # f"{base}/x": known when every part is
            texts = []
            for part in node.values:
                if isinstance(part, ast.FormattedValue):
                    if part.format_spec is not None or part.conversion not in (-1, ord("s")):
                        return None
                    part = part.value
                value = self._value(part, depth + 1)
                value = value.path if isinstance(value, _Path) else value
                if not isinstance(value, (str, int)):
                    return None
                texts.append(str(value))
            return "".join(texts)
        if isinstance(node, ast.FormattedValue):
            return self._value(node.value, depth + 1)
        if isinstance(node, ast.Name):
            assigned = self.values.get(node.id, [])
            if node.id in self.rebound or len(assigned) != 1:
                return _Path(None) if any(self._is_path(v, depth) for v in assigned) else None
            return self._value(assigned[0], depth + 1)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Div)):
            left, right = self._value(node.left, depth + 1), self._value(node.right, depth + 1)
            if isinstance(node.op, ast.Div) and isinstance(left, _Path):
                right = right.path if isinstance(right, _Path) else right
                return _Path(posixpath.join(left.path, right) if left.path is not None and isinstance(right, str)
                             else None)
            if isinstance(node.op, ast.Add) and isinstance(left, str) and isinstance(right, str):
                return left + right
            return None
        if isinstance(node, ast.Attribute) and node.attr == "parent":
            base = self._value(node.value, depth + 1)
            if isinstance(base, _Path):
                return _Path(posixpath.dirname(base.path) if base.path is not None else None)
            return None
        if isinstance(node, ast.Subscript) and self._qualified(node.value) == "os.environ":
            key = self._value(node.slice, depth + 1)
            return self.home if key == "HOME" else None
        if isinstance(node, ast.Call):
            return self._call_value(node, depth)
        return None

    def _is_path(self, node: ast.AST, depth: int = 0) -> bool:
        """Whether an expression makes a pathlib path (what is assigned to a name bound more than once)."""
        if depth > 32:
            return True
        if isinstance(node, ast.Call):
            name = self._qualified(node.func)
            if name in PATH_TYPES or name in ("pathlib.Path.home", "pathlib.Path.cwd"):
                return True
            return isinstance(node.func, ast.Attribute) and self._is_path(node.func.value, depth + 1)
        return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and self._is_path(node.left, depth + 1)

    def _call_value(self, node: ast.Call, depth: int) -> str | int | _Path | None:
        name = self._qualified(node.func)
        args = [self._value(a, depth + 1) for a in node.args]
        texts = [a.path if isinstance(a, _Path) else a for a in args]
        if name in PATH_TYPES:
            if not texts:
                return _Path(".")
            return _Path(posixpath.join(*texts) if all(isinstance(t, str) for t in texts) else None)  # type: ignore
        if name == "pathlib.Path.home":
            return _Path(self.home)
        if name in ("pathlib.Path.cwd", "os.getcwd"):
            return _Path(".") if name.startswith("pathlib") else "."
        if name == "os.path.join" and texts and all(isinstance(t, str) for t in texts):
            return posixpath.join(*texts)  # type: ignore[arg-type]
        if name == "os.path.expanduser" and len(texts) == 1 and isinstance(texts[0], str):
            return self._expand_user(texts[0])
        if name in ("os.path.abspath", "os.path.normpath", "os.path.realpath", "os.fspath") and len(texts) == 1:
            return texts[0] if isinstance(texts[0], str) else None
        if name in ("os.getenv", "os.environ.get") and texts == ["HOME"]:
            return self.home
        if isinstance(node.func, ast.Name) and node.func.id == "str" and len(args) == 1:
            return texts[0] if isinstance(texts[0], str) else None
        if isinstance(node.func, ast.Attribute):
            receiver = self._value(node.func.value, depth + 1)
            if isinstance(receiver, _Path):
                method = node.func.attr
                if method in PATH_SAME:
                    path = receiver.path
                    if method == "expanduser" and path is not None:
                        path = self._expand_user(path)
                    return _Path(path)
                if method == "joinpath":
                    ok = receiver.path is not None and all(isinstance(t, str) for t in texts)
                    return _Path(posixpath.join(receiver.path, *texts) if ok else None)  # type: ignore[arg-type]
        return None

    def _expand_user(self, text: str) -> str | None:
        if text == "~" or text.startswith("~/"):
            return None if self.home is None else self.home + text[1:]
        return text if not text.startswith("~") else None

    def _path(self, node: ast.AST | None) -> str | None:
        value = None if node is None else self._value(node)
        if isinstance(value, _Path):
            return value.path
        return value if isinstance(value, str) else None

    # -- what the program does -------------------------------------------------------------------------------

    def steps(self) -> Iterator[Step]:
        for node in self.nodes:
            if isinstance(node, ast.Name):
                self._noting(self._check_name, node)  # type: ignore[arg-type]
            elif isinstance(node, ast.Attribute):
                self._noting(self._check_attribute, node)  # type: ignore[arg-type]
            elif isinstance(node, ast.Call):
                found: list[Step] = []
                self._noting(lambda call, into=found: into.extend(self._call(call)), node)  # type: ignore
                yield from found

    def _called(self, node: ast.AST) -> bool:
        parent = self.parents.get(id(node))
        return isinstance(parent, ast.Call) and parent.func is node

    def _check_name(self, node: ast.Name) -> None:
        dunder = node.id.startswith("__") and node.id.endswith("__") and node.id not in DUNDER_READ
        if node.id in DYNAMIC or dunder:
            raise _Unread(f"the program uses {node.id}, which builds or reaches code at run time", False)
        if node.id == "open" and node.id not in self.names and not self._called(node):
            raise _Unread("the program hands open on as a value", False)
        qualified = self.names.get(node.id)
        if qualified is None or node.id in self.values or node.id in self.rebound:
            return
        parent = self.parents.get(id(node))
        if isinstance(parent, ast.Attribute) or self._called(node):
            return
        if isinstance(parent, (ast.alias, ast.Import, ast.ImportFrom)):
            return
        if _pure(qualified):
            return
        raise _Unread(f"the program hands {qualified} on as a value", False)  # then anything may be called on it

    def _check_attribute(self, node: ast.Attribute) -> None:
        if node.attr.startswith("__") and node.attr.endswith("__") and node.attr not in DUNDER_READ:
            raise _Unread(f"the program reaches {node.attr}, which builds or reaches code at run time", False)
        if isinstance(self.parents.get(id(node)), ast.Attribute):
            return  # the outermost attribute of a chain is the one judged
        qualified = self._qualified(node)
        if qualified is not None and qualified.startswith("os.environ") and not self._reads_environment(node):
            self.environment_changed = True
        if qualified is None:
            if node.attr in UNKNOWN_RECEIVER and not self._called(node):
                raise _Unread(f"the program hands .{node.attr} on as a value", False)
            return
        if _pure(qualified) or (self._called(node) and (qualified in CALLS or qualified in SUBPROCESS
                                                        or qualified in SHELL_CALLS or qualified in PATH_TYPES
                                                        or qualified in ("pathlib.Path.home", "pathlib.Path.cwd"))):
            return
        if qualified in CALLS or qualified in SUBPROCESS or qualified in SHELL_CALLS:
            raise _Unread(f"the program hands {qualified} on as a value", False)
        known_in_part = _module_of(qualified) in PARTLY_KNOWN  # os.chdir, pathlib.Path.write_text(p, ...)
        raise _Unread(f"the program calls {qualified}, which shelljail does not read",
                      not known_in_part and not _escapes(qualified))

    def _reads_environment(self, node: ast.Attribute) -> bool:
        """`os.environ[K]`, `os.environ.get(K)`, `K in os.environ`: read, not written nor handed on."""
        if node.attr != "environ":
            return node.attr in ("get", "keys", "items", "values", "copy") and self._called(node)
        parent = self.parents.get(id(node))
        if isinstance(parent, ast.Subscript):
            return isinstance(parent.ctx, ast.Load)
        if isinstance(parent, ast.Compare):
            return True
        return isinstance(parent, ast.Attribute) and parent.attr in ("get", "keys", "items", "values", "copy")

    def _call(self, node: ast.Call) -> Iterator[Step]:
        func = node.func
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            if self._qualified(func) in (*CALLS, *SUBPROCESS, *SHELL_CALLS) or isinstance(func, ast.Name) and \
                    func.id == "open":
                raise _Unread("the program unpacks the arguments of a call that changes files or runs programs",
                              True)
        if isinstance(func, ast.Name) and func.id == "open" and func.id not in self.names:
            yield self._open(node, self._path(node.args[0] if node.args else _keyword(node, "file")),
                             node.args[1] if len(node.args) > 1 else _keyword(node, "mode"))
            return
        qualified = self._qualified(func)
        if qualified in ("os.putenv", "os.unsetenv"):
            self.environment_changed = True
        if qualified in SUBPROCESS or qualified in SHELL_CALLS:
            self.starts_programs = True
        if qualified in SUBPROCESS:
            yield self._subprocess(node, qualified)
        elif qualified in SHELL_CALLS:
            text = self._value(node.args[0]) if node.args else None
            if not isinstance(text, str):
                raise _Unread(f"{qualified} runs a command line only known when it runs", False)
            yield Step(line=text)
        elif qualified in CALLS:
            yield self._file_call(qualified, node)
        elif qualified is None and isinstance(func, ast.Attribute):
            yield from self._method(node, func)

    def _open(self, node: ast.Call, path: str | None, mode_node: ast.AST | None) -> Step:
        mode = "r" if mode_node is None else self._value(mode_node)
        if not isinstance(mode, str):
            raise _Unread("open() is given a mode only known when it runs", False)
        writes = any(c in mode for c in "wax+")
        if path is None:
            if writes:
                raise _Unread("open() writes a path only known when it runs", False)
            return Step(("cat", "--", None))
        return Step(("tee", "-a", "--", path) if "a" in mode else ("tee", "--", path)) if writes else \
            Step(("cat", "--", path))

    def _subprocess(self, node: ast.Call, name: str) -> Step:
        for keyword in node.keywords:
            if keyword.arg in ("executable", "env", "preexec_fn", "cwd", "user", "group", "extra_groups",
                               "process_group", "start_new_session"):
                raise _Unread(f"{name} is given {keyword.arg}=, which changes what or where it runs", False)
        shell = _keyword(node, "shell")
        shell_value = False if shell is None else (shell.value if isinstance(shell, ast.Constant) else None)
        command = node.args[0] if node.args else _keyword(node, "args")
        if shell_value is None or command is None:
            raise _Unread(f"{name} runs a command only known when it runs", False)
        if isinstance(command, (ast.List, ast.Tuple)):
            words = [self._value(e) for e in command.elts]
            texts = [w.path if isinstance(w, _Path) else w for w in words]
            if not texts or not all(isinstance(t, str) for t in texts) or any(isinstance(e, ast.Starred)
                                                                              for e in command.elts):
                raise _Unread(f"{name} runs an argv only known when it runs", False)
            if shell_value:
                return Step(line=str(texts[0]))  # sh -c ARGV[0] ARGV[1:]: the first word is the line
            return Step(tuple(texts))  # type: ignore[arg-type]
        text = self._value(command)
        text = text.path if isinstance(text, _Path) else text
        if not isinstance(text, str):
            raise _Unread(f"{name} runs a command only known when it runs", False)
        return Step(line=text) if shell_value else Step((text,))

    def _file_call(self, name: str, node: ast.Call) -> Step:
        program = CALLS[name]
        wanted = OPERANDS.get(program[0], 1) if program[0] not in ("ls",) else 1
        nodes = list(node.args[:wanted])
        for key in ("src", "dst") if wanted == 2 else ("path", "top", "name"):
            found = _keyword(node, key)
            if found is not None:
                nodes.append(found)
        if program[0] == "ls" and not nodes:
            return Step((*program, "--", "."))
        paths = [self._path(n) for n in nodes[:wanted]]
        if len(paths) < wanted or (None in paths and program[0] not in READS):
            raise _Unread(f"{name} is handed a path only known when it runs", False)
        return Step((*program, "--", *paths))

    def _method(self, node: ast.Call, func: ast.Attribute) -> Iterator[Step]:
        receiver = self._value(func.value)
        method = func.attr
        if not isinstance(receiver, _Path):
            if method in UNKNOWN_RECEIVER or (method == "replace" and len(node.args) == 1):
                raise _Unread(f".{method}() is called on a value shelljail cannot name", False)
            return
        path = receiver.path
        if method in PATH_PURE or method in PATH_SAME or method == "joinpath":
            return
        if method == "open":
            yield self._open(node, path, node.args[0] if node.args else _keyword(node, "mode"))
            return
        if method == "mkdir":
            parents = _keyword(node, "parents")
            program = ("mkdir", "-p") if isinstance(parents, ast.Constant) and parents.value else ("mkdir",)
        elif method == "chmod":
            mode = self._value(node.args[0]) if node.args else None
            if not isinstance(mode, int) or path is None:
                raise _Unread("Path.chmod is given a mode or path only known when it runs", False)
            yield Step(("chmod", "--", format(mode, "o"), path))
            return
        elif method in PATH_MOVES:
            target = self._path(node.args[0] if node.args else _keyword(node, "target"))
            if path is None or target is None:
                raise _Unread(f"Path.{method} is handed a path only known when it runs", False)
            source, destination = (target, path) if method in ("symlink_to", "hardlink_to") else (path, target)
            yield Step((*PATH_MOVES[method], "--", source, destination))
            return
        elif method in PATH_CALLS:
            program = PATH_CALLS[method]
        else:
            raise _Unread(f"the program calls Path.{method}, which shelljail does not read", True)
        if path is None and program[0] not in READS:
            raise _Unread(f"Path.{method} is handed a path only known when it runs", False)
        yield Step((*program, "--", path))


def _keyword(node: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in node.keywords if k.arg == name), None)


def _module_of(qualified: str) -> str:
    """The longest known module a qualified name is in (`os.path.join` -> os.path), else its first part."""
    parts = qualified.split(".")
    for end in range(len(parts), 0, -1):
        module = ".".join(parts[:end])
        if module in PURE_MODULES or module in PARTLY_KNOWN:
            return module
    return parts[0]


def _pure(qualified: str) -> bool:
    if qualified in PURE_NAMES or any(qualified.startswith(p + ".") for p in PURE_NAMES):
        return True
    module = _module_of(qualified)
    if module in PURE_MODULES:
        return True
    if module in PATH_TYPES or qualified.split(".")[0] == "pathlib":
        rest = qualified.split(".")[2:] if qualified.startswith("pathlib.") else []
        return not rest or rest[0] in PATH_PURE or rest[0] in ("home", "cwd")
    return False


def _known_module(name: str) -> None:
    if name in PURE_MODULES or name in PARTLY_KNOWN:
        return
    raise _Unread(f"the program imports {name}, a module shelljail does not read", not _escapes(name))


def _escapes(qualified: str) -> bool:
    """Whether a module or name this reading does not know may start programs, reach the network or build code."""
    top = qualified.split(".")[0]
    if top == "os":
        last = qualified.split(".")[-1]
        return qualified.count(".") == 1 and last.startswith(ESCAPE_OS)
    if top == "urllib" and qualified.startswith("urllib.parse"):
        return False
    return top in ESCAPE_MODULES or qualified.startswith("sys.modules")
