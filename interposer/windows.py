"""Windows shells reached from bash (WSL, Git Bash, MSYS): what `powershell -Command TEXT` and `cmd /c TEXT` do,
read into a bash line the judge already knows how to judge.

Only enough of PowerShell and cmd is read to see a delete, a write, a read and its target: `Remove-Item
-Recurse -Force P` (and its aliases rm, ri, del, rd, rmdir, erase) becomes `rm -r -f -- P`, `rd /s /q P`
becomes `rm -r -f -- P`, `del /s /q P` `rm -r -f -- P`; `Get-ChildItem` and `dir` only read; an external
program (`git clean -fdx`, `npm install`) is passed on as bash would run it. Windows paths are read as WSL
sees them (`C:\\x` is `/mnt/c/x`, `%USERPROFILE%`, `$env:USERPROFILE` and `~` the home, `%TEMP%` `/tmp`).
Whatever is not read (a cmdlet not listed here, a script block, `$(...)`, `Invoke-Expression`, `-File`, a
variable of its own) is returned as a reason: the line is asked about, never allowed unread.
"""

from __future__ import annotations

import base64
import binascii
import re
import shlex
from collections.abc import Callable, Sequence
from typing import NamedTuple

from .words import Word

POWERSHELLS = frozenset({"powershell", "pwsh", "powershell.exe", "pwsh.exe"})
CMDS = frozenset({"cmd", "cmd.exe"})
MAX_TEXT = 64 * 1024  # characters of a Windows command read; more is not read


class Reading(NamedTuple):
    how: str  # "pwsh -Command", "cmd /c"
    line: str = ""  # the bash line it amounts to ("" when nothing runs)
    unread: tuple[str, ...] = ()  # why parts could not be read (each makes the line asked)


# -- PowerShell ------------------------------------------------------------------------------------

_PS_VALUE_PARAMETERS = ("executionpolicy", "windowstyle", "inputformat", "outputformat", "configurationname",
                        "workingdirectory", "settingsfile", "custompipename", "psconsolefile", "wd",
                        "ep", "ex", "w", "wi", "if", "of", "config")
_DELETE = frozenset({"remove-item", "rm", "ri", "del", "erase", "rd", "rmdir"})
_READ_CONTENT = frozenset({"get-content", "gc", "cat", "type"})
_WRITE = {"set-content": ">", "sc": ">", "add-content": ">>", "ac": ">>", "out-file": ">", "clear-content": ">",
          "clc": ">", "tee-object": ">", "tee": ">"}
_COPY = frozenset({"copy-item", "cp", "copy", "cpi"})
_MOVE = frozenset({"move-item", "mv", "move", "mi", "rename-item", "ren", "rni"})
_NEW = frozenset({"new-item", "ni", "mkdir", "md"})
_CD = frozenset({"set-location", "cd", "sl", "chdir", "push-location", "pushd"})
_STOP = frozenset({"stop-process", "kill", "spps"})
# Cmdlets that only read or print (their script-block arguments, if any, are read as statements too).
_PS_READING = frozenset({
    "get-childitem", "gci", "ls", "dir", "get-location", "gl", "pwd", "get-process", "gps", "ps", "get-service",
    "gsv", "get-date", "get-item", "gi", "get-itemproperty", "gp", "get-command", "gcm", "get-help", "help",
    "write-host", "write-output", "echo", "write", "write-error", "write-warning", "write-verbose",
    "measure-object", "measure", "select-object", "select", "sort-object", "sort", "where-object", "where", "?",
    "foreach-object", "%", "foreach", "format-table", "ft", "format-list", "fl", "format-wide", "fw", "out-string",
    "out-host", "oh", "out-null", "test-path", "resolve-path", "rvpa", "split-path", "join-path", "get-variable",
    "gv", "get-host", "get-filehash", "get-acl", "select-string", "sls", "compare-object", "compare", "diff",
    "convertto-json", "convertfrom-json", "get-member", "gm", "get-alias", "gal", "get-executionpolicy",
    "get-module", "gmo", "get-psdrive", "gdr", "get-ciminstance", "gcim", "get-wmiobject", "gwmi",
    "get-computerinfo", "get-netipaddress", "test-connection", "get-uptime", "pop-location", "popd", "clear-host",
    "cls", "clear", "start-sleep", "sleep", "get-history", "h", "history", "group-object", "group",
    "get-unique", "gu", "exit", "get-psreadlineoption", "get-culture", "get-timezone", "get-random"})


def powershell(args: Sequence[Word], stdin: str | None) -> Reading:
    """What `powershell`/`pwsh` with these arguments runs, as a bash line (the words as bash expanded them)."""
    how = "powershell"
    index = 0
    while index < len(args):
        word = args[index]
        text = word.value
        lowered = text.lower()
        if not (text.startswith("-") or text.startswith("/")) or text in ("-", "/"):
            break  # pwsh: a script file; Windows PowerShell: the command
        name = lowered.lstrip("-/").split(":", 1)[0]
        if name in ("version", "v", "help", "h", "?"):
            return Reading(how)  # it prints its version or usage
        if _prefix_of(name, "command", 1) or name == "c":
            rest = args[index + 1:]
            if rest and rest[0].value == "-":
                return _read_powershell(stdin, f"{how} -Command -", from_stdin=True)
            return _read_words(rest, f"{how} -Command", _powershell_text)
        if _prefix_of(name, "encodedcommand", 1) or name in ("ec", "enc", "e"):
            if index + 1 >= len(args) or not args[index + 1].literal:
                return Reading(f"{how} -EncodedCommand", unread=("powershell -EncodedCommand runs a command only "
                                                                 "known when it runs",))
            return _read_powershell(_decoded(args[index + 1].value), f"{how} -EncodedCommand")
        if _prefix_of(name, "file", 1):
            return Reading(f"{how} -File", unread=("powershell -File runs a PowerShell script shelljail does not "
                                                   "read",))
        index += 2 if name in _PS_VALUE_PARAMETERS or any(_prefix_of(name, p, 3) for p in _PS_VALUE_PARAMETERS
                                                          if len(p) > 3) else 1
    if index < len(args):
        return _read_words(args[index:], f"{how} COMMAND", _powershell_text)
    return _read_powershell(stdin, how, from_stdin=True)


def _prefix_of(name: str, parameter: str, shortest: int) -> bool:
    return len(name) >= shortest and parameter.startswith(name)


def _decoded(text: str) -> str | None:
    try:
        return base64.b64decode(text[:MAX_TEXT * 2], validate=True).decode("utf-16-le")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def _read_words(words: Sequence[Word], how: str, reader: Callable[[str, str], Reading]) -> Reading:
    """The words joined as the Windows shell sees its command line; words bash did not know are unread."""
    if any(not w.literal for w in words):
        shown = " ".join(w.source for w in words)[:80]
        return Reading(how, unread=(f"{how} runs a command with text only known when it runs ({shown})",))
    return reader(" ".join(w.value for w in words), how)


def _read_powershell(text: str | None, how: str, from_stdin: bool = False) -> Reading:
    if text is None:
        why = "reads its commands from a person or a stream shelljail does not see" if from_stdin else \
            "runs an encoded command that is not base64 of UTF-16 text"
        return Reading(how, unread=(f"{how} {why}",))
    return _powershell_text(text, how)


_PS_UNREADABLE = re.compile(r"\$\(|@\(|\]::|\biex\b|invoke-expression|invoke-command|invoke-item|start-process|"
                            r"\bsaps\b|\bstart\b|add-type|new-object|\.invoke\(|scriptblock|&\s*[\"'$({]|"
                            r"(^|[;|{\s])\.\s+\S|\bicm\b|\bii\b|-encodedcommand|\$executioncontext|"
                            r"set-alias|new-alias|\bsal\b|\bnal\b|set-item|\bsi\b|function\s|\bfilter\s",
                            re.IGNORECASE)


def _powershell_text(text: str, how: str) -> Reading:
    if len(text) > MAX_TEXT:
        return Reading(how, unread=(f"{how} runs a command over {MAX_TEXT} characters",))
    outside_quotes = re.sub(r"'[^']*'", "''", text)
    found = _PS_UNREADABLE.search(outside_quotes)
    if found:
        return Reading(how, unread=(f"{how} uses {found.group(0).strip()!r}, which shelljail does not read",))
    statements, unread = _ps_statements(text)
    if unread:
        return Reading(how, unread=(f"{how}: {unread}",))
    lines, reasons = [], []
    for words in statements:
        unknown = sorted({name for w in words for name in w.unknown})
        line, reason = ("", f"{', '.join(unknown)}: a variable of its own, only known when it runs") if unknown \
            else _ps_statement(words)
        if reason:
            reasons.append(f"{how}: {reason}")
        elif line:
            lines.append(line)
    return Reading(how, "; ".join(lines), tuple(reasons))


class _PsWord(NamedTuple):
    text: str  # with known variables replaced, in Windows form
    unknown: tuple[str, ...]  # variables it holds that are not known
    bare: bool  # not quoted: may be a parameter (-Recurse) or an operator


def _ps_statements(text: str) -> tuple[list[list[_PsWord]], str]:
    """Statements split at ; | && || newlines and braces, each a list of words; or why it cannot be read."""
    statements: list[list[_PsWord]] = [[]]
    current, unknown, quoted, index = "", [], False, 0
    started = False

    def end_word() -> None:
        nonlocal current, unknown, quoted, started
        if started:
            statements[-1].append(_PsWord(current, tuple(unknown), not quoted))
        current, unknown, quoted, started = "", [], False, False

    while index < len(text):
        char = text[index]
        if char == "'":
            close = index + 1
            chunk = ""
            while True:
                close = text.find("'", close)
                if close < 0:
                    return [], "a quote is not closed"
                if text[close + 1:close + 2] == "'":
                    chunk += text[index + 1:close + 1]
                    index, close = close + 1, close + 2
                    continue
                break
            current += chunk + text[index + 1:close]
            quoted = started = True
            index = close + 1
            continue
        if char == '"':
            close = index + 1
            while close < len(text) and text[close] != '"':
                close += 2 if text[close] == "`" else 1
            if close >= len(text):
                return [], "a quote is not closed"
            value, names = _ps_expand(text[index + 1:close])
            current += value
            unknown += names
            quoted = started = True
            index = close + 1
            continue
        if char == "`" and index + 1 < len(text):
            current += text[index + 1]
            started = True
            index += 2
            continue
        if char in " \t":
            end_word()
        elif char in ";\n\r{}|&()":
            end_word()
            if char == "(" or char == ")":
                return [], "a parenthesised expression is not read"
            if statements[-1]:
                statements.append([])
        elif char == "$":
            match = re.match(r"\$(\{[^}]*\}|[A-Za-z_][\w:]*|_|\?|\^|\$)", text[index:])
            if match is None:
                current += char
                started = True
            else:
                value, names = _ps_expand(match.group(0))
                current += value
                unknown += names
                started = True
                index += len(match.group(0))
                continue
        else:
            current += char
            started = True
        index += 1
    end_word()
    return [s for s in statements if s], ""


_KNOWN_VARIABLES = {"home": "~", "env:userprofile": "~", "env:home": "~", "env:homepath": "~", "env:temp": "/tmp",
                    "env:tmp": "/tmp", "pwd": ".", "true": "1", "false": "", "null": "", "env:systemdrive": "C:",
                    "env:systemroot": r"C:\Windows", "env:windir": r"C:\Windows"}


def _ps_expand(text: str) -> tuple[str, list[str]]:
    """Known variables replaced; unknown ones kept as ${NAME} and listed."""
    unknown: list[str] = []

    def one(match: re.Match[str]) -> str:
        name = match.group(1).strip("{}").lower()
        if name in _KNOWN_VARIABLES:
            return _KNOWN_VARIABLES[name]
        unknown.append(name)
        return "${" + re.sub(r"\W", "_", name) + "}"

    text = re.sub(r"`(.)", r"\1", text)
    return re.sub(r"\$(\{[^}]*\}|[A-Za-z_][\w:]*|_|\?|\^|\$)", one, text), unknown


def _is_parameter(word: _PsWord) -> bool:
    return word.bare and word.text.startswith("-") and len(word.text) > 1 and not word.text[1].isdigit()


def _ps_statement(words: list[_PsWord]) -> tuple[str, str]:
    """One statement as a bash command (or "" when it only reads); or why it is not read."""
    redirect = ""
    if len(words) >= 2 and words[-2].bare and words[-2].text in (">", ">>", "2>", "2>>", "*>", "*>>"):
        redirect = f" {'>>' if words[-2].text.endswith('>>') else '>'} {_bash_word(words[-1])}"
        words = words[:-2]
    if not words:
        return "true" + redirect, ""  # `> file` alone truncates it
    head = words[0]
    if head.unknown or not head.bare:
        return "", f"a command named by {head.text!r} is not read"
    name = head.text.lower()
    parameters = {w.text.lower().lstrip("-").split(":", 1)[0] for w in words[1:] if _is_parameter(w)}
    if any(_prefix_of(p, "whatif", 2) for p in parameters):
        return "", ""  # -WhatIf: it says what it would do, and does nothing
    values = [w for w in words[1:] if not _is_parameter(w)]
    named = _named_values(words[1:], ("path", "literalpath", "filepath", "destination", "name", "id", "value"))
    paths = [p for w in (named.get("path") or named.get("literalpath") or named.get("filepath")
                         or ([values[0]] if values else [])) for p in _split_list(w)]
    if name in _DELETE:
        if not paths:
            return "", f"{head.text} deletes what its input names"
        recurse = "-r " if any(_prefix_of(p, "recurse", 1) for p in parameters) else ""
        return f"rm {recurse}-f -- {' '.join(_bash_word(p) for p in paths)}{redirect}", ""
    if name in _READ_CONTENT:
        return (f"cat -- {' '.join(_bash_word(p) for p in paths)}" if paths else "true") + redirect, ""
    if name in _WRITE:
        if not paths:
            return "", f"{head.text} writes a file its input names"
        return f"true {_WRITE[name]} {_bash_word(paths[0])}{redirect}", ""
    if name in _COPY or name in _MOVE:
        target = named.get("destination") or (values[1:2] if len(values) > 1 else [])
        if not paths or not target:
            return "", f"{head.text} without a source and a destination is not read"
        program = "cp -r" if name in _COPY else "mv"
        return f"{program} -- {' '.join(_bash_word(p) for p in paths)} {_bash_word(target[0])}{redirect}", ""
    if name in _NEW:
        if not paths:
            return "", f"{head.text} without a path is not read"
        return f"mkdir -p -- {_bash_word(paths[0])}{redirect}" if name in ("mkdir", "md") or any(
            w.text.lower() == "directory" for w in words) else f"touch -- {_bash_word(paths[0])}{redirect}", ""
    if name in _CD:
        return (f"cd -- {_bash_word(paths[0])}" if paths else "true"), ""
    if name in _STOP:
        ids = named.get("id") or []
        names = named.get("name") or ([] if ids else values)
        if ids:
            return f"kill -9 {' '.join(_bash_word(i) for i in ids)}", ""
        return (f"pkill -9 -x {_bash_word(names[0])}" if names else "true"), ""
    if name in _PS_READING:
        return ("true" + redirect) if redirect else "", ""
    if "-" in name or "\\" in name or "/" in name or name.endswith(".ps1"):
        return "", f"{head.text} is not a command shelljail reads"
    program = name[:-4] if name.endswith(".exe") else name  # an external program: as bash would run it
    return " ".join([shlex.quote(program), *(_bash_word(w) for w in words[1:])]) + redirect, ""


def _named_values(words: list[_PsWord], names: tuple[str, ...]) -> dict[str, list[_PsWord]]:
    """`-Path X`, `-Path:X` and their prefixes, for the parameters named."""
    out: dict[str, list[_PsWord]] = {}
    for index, word in enumerate(words):
        if not _is_parameter(word):
            continue
        given, _, attached = word.text.lstrip("-").partition(":")
        match = next((n for n in names if _prefix_of(given.lower(), n, 2)), None)
        if match is None:
            continue
        if attached:
            out[match] = [word._replace(text=attached)]
        elif index + 1 < len(words) and not _is_parameter(words[index + 1]):
            out[match] = [words[index + 1]]
    return out


def _split_list(word: _PsWord) -> list[_PsWord]:
    """`a,b,c` is an array of three paths."""
    if not word.bare or "," not in word.text:
        return [word]
    return [word._replace(text=part) for part in word.text.split(",") if part]


# -- cmd.exe ----------------------------------------------------------------------------------------

_CMD_VARIABLES = {"userprofile": "~", "homepath": "~", "home": "~", "temp": "/tmp", "tmp": "/tmp", "cd": ".",
                  "systemdrive": "C:", "systemroot": r"C:\Windows", "windir": r"C:\Windows",
                  "programfiles": r"C:\Program Files", "appdata": r"~\AppData\Roaming",
                  "localappdata": r"~\AppData\Local"}
_CMD_READING = frozenset({"dir", "echo", "ver", "vol", "where", "whoami", "hostname", "ipconfig", "systeminfo",
                          "tasklist", "findstr", "find", "more", "sort", "cls", "title", "exit", "rem", "path",
                          "time", "date", "type", "tree", "fc", "comp", "chcp", "tzutil", "netstat", "ping",
                          "nslookup", "pause", "color", "prompt", "popd"})
_CMD_UNREAD = frozenset({"for", "if", "call", "start", "goto", "set", "setlocal", "endlocal", "shift", "format",
                         "diskpart", "cipher", "sdelete", "reg", "runas", "schtasks", "wmic", "bcdedit", "assoc",
                         "ftype", "mklink", "attrib", "icacls", "cacls", "takeown", "subst", "label"})


def cmd(args: Sequence[Word], stdin: str | None) -> Reading:
    """What `cmd /c TEXT` (or /k, /r; `//c` from Git Bash) runs, as a bash line."""
    for index, word in enumerate(args):
        switch = word.value.lower()
        if switch in ("/c", "/k", "/r", "//c", "//k", "//r"):
            return _read_words(args[index + 1:], "cmd /c", _cmd_text)
        if switch.startswith("/c") and len(switch) > 2 and not switch[2].isalpha():
            return _read_words([Word(word.value[2:], word.literal, False, word.source), *args[index + 1:]],
                               "cmd /c", _cmd_text)
        if not switch.startswith("/"):
            break
    if stdin is not None:
        return _cmd_text(stdin, "cmd <")
    return Reading("cmd", unread=("cmd starts an interactive Windows shell, whose commands shelljail would not "
                                  "see",))


def _cmd_text(text: str, how: str) -> Reading:
    if len(text) > MAX_TEXT:
        return Reading(how, unread=(f"{how} runs a command over {MAX_TEXT} characters",))
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"' and text.count('"') == 2:
        text = text[1:-1]  # cmd /c "a b": the outer quotes go
    statements, unread = _cmd_statements(text)
    if unread:
        return Reading(how, unread=(f"{how}: {unread}",))
    lines, reasons = [], []
    for words in statements:
        unknown = sorted({name for w in words for name in w.unknown})
        line, reason = ("", f"{', '.join(unknown)}: a variable of its own, only known when it runs") if unknown \
            else _cmd_statement(words)
        if reason:
            reasons.append(f"{how}: {reason}")
        elif line:
            lines.append(line)
    return Reading(how, "; ".join(lines), tuple(reasons))


def _cmd_statements(text: str) -> tuple[list[list[_PsWord]], str]:
    """Statements split at & && || |, words split at spaces outside double quotes; ^ escapes."""
    statements: list[list[_PsWord]] = [[]]
    current, unknown, quoted, started, index = "", [], False, False, 0

    def end_word() -> None:
        nonlocal current, unknown, quoted, started
        if started:
            statements[-1].append(_PsWord(current, tuple(unknown), not quoted))
        current, unknown, quoted, started = "", [], False, False

    while index < len(text):
        char = text[index]
        if char == "^" and index + 1 < len(text):
            current += text[index + 1]
            started = True
            index += 2
            continue
        if char == '"':
            close = text.find('"', index + 1)
            if close < 0:
                close = len(text)
            value, names = _cmd_expand(text[index + 1:close])
            current += value
            unknown += names
            quoted = started = True
            index = close + 1
            continue
        if char == "%" or char == "!":
            close = text.find(char, index + 1)
            if close > index + 1:
                value, names = _cmd_expand(text[index:close + 1])
                current += value
                unknown += names
                started = True
                index = close + 1
                continue
        if char in " \t":
            end_word()
        elif char in "&|\n\r":
            end_word()
            if statements[-1]:
                statements.append([])
        elif char in "()":
            return [], "a parenthesised block is not read"
        elif char in "<>":
            end_word()
            op = ">>" if text[index:index + 2] == ">>" else char
            statements[-1].append(_PsWord(op, (), True))
            index += len(op)
            continue
        else:
            current += char
            started = True
        index += 1
    end_word()
    return [s for s in statements if s], ""


def _cmd_expand(text: str) -> tuple[str, list[str]]:
    unknown: list[str] = []

    def one(match: re.Match[str]) -> str:
        name = match.group(1).split(":", 1)[0].lower()
        if name in _CMD_VARIABLES:
            return _CMD_VARIABLES[name]
        unknown.append(name)
        return "${" + re.sub(r"\W", "_", name) + "}"

    return re.sub(r"[%!]([^%!\s]+)[%!]", one, text), unknown


def _cmd_statement(words: list[_PsWord]) -> tuple[str, str]:
    redirect = ""
    while len(words) >= 2 and words[-2].bare and words[-2].text in (">", ">>", "<"):
        target = words[-1]
        op = words[-2].text
        words = words[:-2]
        if op != "<":
            redirect += f" {op} {_bash_word(target)}"
    if words and words[-1].bare and re.fullmatch(r"\d?>>?", words[-1].text):
        return "", "a redirection without a target is not read"
    if not words:
        return ("true" + redirect) if redirect else "", ""  # `> file` alone truncates it
    head = words[0]._replace(text=words[0].text.lstrip("@"))
    if head.unknown:
        return "", f"a command named by {head.text!r} is not read"
    name = head.text.lower()
    name = name[:-4] if name.endswith(".exe") else name
    switches = {w.text.lower() for w in words[1:] if w.bare and w.text.startswith("/") and len(w.text) <= 3}
    operands = [w for w in words[1:] if not (w.bare and w.text.startswith("/") and len(w.text) <= 3)]
    if name in ("rd", "rmdir"):
        if not operands:
            return "", f"{name} without a path is not read"
        program = "rm -r -f --" if "/s" in switches else "rmdir --"
        return f"{program} {' '.join(_bash_word(w) for w in operands)}{redirect}", ""
    if name in ("del", "erase"):
        if not operands:
            return "", f"{name} without a path is not read"
        program = "rm -r -f --" if "/s" in switches else "rm -f --"
        return f"{program} {' '.join(_bash_word(w) for w in operands)}{redirect}", ""
    if name in ("copy", "xcopy", "move", "ren", "rename", "robocopy"):
        if len(operands) < 2:
            return "", f"{name} without a source and a destination is not read"
        source, target = operands[0], operands[1]
        if name == "robocopy" and ({"/mir", "/purge"} & {w.text.lower() for w in words[1:]}):
            return f"rm -r -f -- {_bash_word(target, contents=True)}; cp -r -- {_bash_word(source)} " \
                   f"{_bash_word(target)}", ""
        program = "mv --" if name in ("move", "ren", "rename") else "cp -r --"
        return f"{program} {_bash_word(source)} {_bash_word(target)}{redirect}", ""
    if name in ("md", "mkdir"):
        return (f"mkdir -p -- {' '.join(_bash_word(w) for w in operands)}" if operands else "true") + redirect, ""
    if name in ("cd", "chdir", "pushd"):
        return (f"cd -- {_bash_word(operands[0])}" if operands else "true"), ""
    if name == "type":
        return (f"cat -- {' '.join(_bash_word(w) for w in operands)}" if operands else "true") + redirect, ""
    if name in _CMD_READING:
        return ("true" + redirect) if redirect else "", ""
    if name in _CMD_UNREAD or name.startswith(":"):
        return "", f"{name} is not read by shelljail"
    if "\\" in name or "/" in name or name.endswith((".bat", ".cmd", ".ps1")):
        return "", f"{head.text} runs a program or script shelljail does not read"
    return " ".join([shlex.quote(name), *(_bash_word(w) for w in words[1:])]) + redirect, ""


# -- paths --------------------------------------------------------------------------------------------

_SAFE = re.compile(r"[A-Za-z0-9_./*?@%+=:,~-]+")


def posix(path: str) -> str:
    """A Windows path as WSL sees it: `C:\\x` is `/mnt/c/x`, `~\\x` the home, `\\\\server\\share` a mount."""
    path = path.replace("\\", "/")
    if path.lower() == "nul":
        return "/dev/null"
    drive = re.match(r"^([A-Za-z]):(/|$)", path) or re.match(r"^([A-Za-z]):", path)
    if drive:
        return f"/mnt/{drive.group(1).lower()}/" + path[len(drive.group(0)):].lstrip("/")
    if path.startswith("//"):
        return "/mnt/unc/" + path[2:]
    return path  # `/etc` (pwsh on Linux) and `\x` (the current drive's root) are outside the workspace alike


def _bash_word(word: _PsWord, contents: bool = False) -> str:
    """The word as a bash word: a path in WSL's form, `~` left to expand, unknown variables left unknown."""
    text = posix(word.text) if not _is_parameter(word) else word.text
    if contents:
        text = text.rstrip("/") + "/*"
    if word.unknown or "${" in text:
        return '"' + text.replace('"', '\\"').replace("`", "\\`") + '"'
    prefix = ""
    if text == "~" or text.startswith("~/"):
        prefix, text = "~", text[1:]
        if not text:
            return "~"
    if _SAFE.fullmatch(text) and not text.startswith("~"):
        return prefix + text
    return prefix + shlex.quote(text)
