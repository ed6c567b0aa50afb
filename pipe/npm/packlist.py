"""Which files of a package folder go into its tarball: the same selection as `npm pack`.

npm 11 bundles npm-packlist 10 on top of ignore-walk 8. Their rules, reimplemented here:

- Every directory is filtered by rule sets in a fixed order: npm's defaults (VCS folders,
  editor/OS junk, `.npmrc`, …), then — at the package root only — the `files` field of
  package.json, then the folder's `.npmignore`, else its `.gitignore`, then the "strict" rules that
  nothing can override (package.json, README/LICENSE/LICENCE/COPYING in any case, `main`, `bin`
  and files named in `files` are always in; `.git`, `node_modules`, `.npmrc` and the root lock
  files are always out). The last matching rule wins; a `!` rule re-includes.
- When package.json has `files`, the root's `.npmignore`/`.gitignore` are not used; deeper ones are.
- A rule that excludes a directory also hides everything below it unless a later rule names
  something inside (a child is only walked if the directory could contain included files).
- Only regular files are packed: symlinks, sockets and the like are skipped, so nothing outside
  the folder can be reached; names containing `*` are skipped (unusable on Windows).
- Modes: `(mode | 0o600) & ~0o022`, and bin targets at the package root get `+x`.
- Order: by extension, then basename, then path, with the 'en' locale collation; this is the
  tarball order (it groups similar files, which helps gzip).

`bundleDependencies` would need npm's dependency tree to resolve; packages that use it are
refused with the advice to pass a tarball made by `npm pack` instead.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import posixpath
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from pipe.errors import InputError
from pipe.npm.globmatch import PatternError, Rule, compiled_rule

_log = logging.getLogger("pipe.npm")

DEFAULT_RULES = [
    ".npmignore",
    ".gitignore",
    "**/.git",
    "**/.svn",
    "**/.hg",
    "**/CVS",
    "**/.git/**",
    "**/.svn/**",
    "**/.hg/**",
    "**/CVS/**",
    "/.lock-wscript",
    "/.wafpickle-*",
    "/build/config.gypi",
    "npm-debug.log",
    "**/.npmrc",
    ".*.swp",
    ".DS_Store",
    "**/.DS_Store/**",
    "._*",
    "**/._*/**",
    "*.orig",
    "/archived-packages/**",
]

ROOT_STRICT_RULES = [
    "/.git",
    "!/package.json",
    "!/readme{,.*[^~$]}",
    "!/copying{,.*[^~$]}",
    "!/license{,.*[^~$]}",
    "!/licence{,.*[^~$]}",
    "/.git",
    "/node_modules",
    ".npmrc",
    "/package-lock.json",
    "/yarn.lock",
    "/pnpm-lock.yaml",
    "/bun.lockb",
]

# Synthetic rule-set names; they can never collide with a file name found in a directory.
DEFAULTS, STRICT, FILES_FIELD = "<defaults>", "<strict>", "package.json"
FILES_SOURCE = 'package.json\'s "files"'
ROOT_RULE_SETS = [DEFAULTS, FILES_FIELD, ".npmignore", ".gitignore", STRICT]
CHILD_RULE_SETS = [DEFAULTS, ".npmignore", ".gitignore", STRICT]


@dataclass(frozen=True)
class PackFile:
    path: str  # posix path relative to the package folder, e.g. "lib/index.js"
    mode: int  # the mode npm writes in the tarball: (stat mode | 0o600) & ~0o022, permission bits only
    size: int
    # Where the contents come from when not `<package folder>/<path>` (pnpm packs the workspace
    # root's LICENSE into a package that has none).
    origin: Path | None = None


def list_package_files(
    folder: Path, manifest: dict, outer_rules: tuple[str, ...] = (), strict_rules: tuple[str, ...] | None = None
) -> list[PackFile]:
    """Exactly npm pack's selection for `folder` (whose parsed package.json is `manifest`),
    in the order npm writes the tarball. `outer_rules`: the texts of the ignore files npm also
    reads for a workspace package, outside its folder (see `workspace_files.outer_ignore_texts`);
    they join the package root's default rules, so everything evaluated later still wins.
    `strict_rules` replaces ROOT_STRICT_RULES (pnpm's older packlist keeps `bun.lockb`)."""
    folder = Path(folder).resolve()
    _refuse_bundled_dependencies(manifest)
    bins = normalized_bins(manifest, folder)
    root = _Walker(folder, parent=None, rule_sets=ROOT_RULE_SETS, is_package=True, manifest=manifest, bins=bins)
    root.strict_rules = tuple(ROOT_STRICT_RULES) if strict_rules is None else strict_rules
    root.rules[DEFAULTS] += [rule for text in outer_rules for rule in _rules(text)]
    paths = root.walk()
    warn_about_empty_entries(root.files_entries, paths)
    return [_pack_file(folder, path, bins) for path in sort_like_npm(paths)]


def warn_about_empty_entries(entries: list[tuple[str, list[Rule]]], paths: list[str]) -> None:
    """npm packs on without a word when a `files` entry matches nothing (a typo, a build that did
    not run, a pattern read differently than meant), and publishes a package without those files."""
    if not entries:
        return
    # Each packed file and each folder holding one, once (a matched folder brings its files in).
    reached = dict.fromkeys(
        "/".join(parts[:n]) for parts in (p.split("/") for p in paths) for n in range(1, len(parts))
    )
    reached.update(dict.fromkeys(paths))
    for entry, rules in entries:
        if not any(_entry_reaches(rules, path) for path in reached):
            _log.warning(
                '"files" entry "%s" in package.json matches no file in the package folder, so the package '
                "holds nothing from it: check the entry, and that the build ran before this step.",
                entry,
            )


def _entry_reaches(rules: list[Rule], path: str) -> bool:
    return any(rule.match(form) for rule in rules for form in (path, "/" + path, path + "/", "/" + path + "/"))


SECRET_NAMES = {
    ".env",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "credentials.json",
    "credentials",
    ".netrc",
    ".pypirc",
    ".htpasswd",
    "secrets.json",
    "secrets.yml",
    "secrets.yaml",
    "service-account.json",
    ".git-credentials",
}
SECRET_GLOBS = ["*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", ".env.*", "*.env", "id_rsa*", "*.ppk"]
NOT_SECRET_GLOBS = [".env.example", ".env.sample", ".env.template", "*.pub"]


def likely_secrets(files: list[PackFile]) -> list[str]:
    """Paths in the packed list that look like credentials (to warn about, not to refuse)."""
    found = []
    for packed in files:
        name = posixpath.basename(packed.path).lower()
        if any(fnmatch.fnmatchcase(name, glob) for glob in NOT_SECRET_GLOBS):
            continue
        if name in SECRET_NAMES or any(fnmatch.fnmatchcase(name, glob) for glob in SECRET_GLOBS):
            found.append(packed.path)
    return found


# ---------------------------------------------------------------------------------------------
# manifest helpers
# ---------------------------------------------------------------------------------------------


def _refuse_bundled_dependencies(manifest: dict) -> None:
    bundled = manifest.get("bundleDependencies", manifest.get("bundledDependencies"))
    if bundled:
        raise InputError(
            "package.json lists bundleDependencies, which this pipe cannot pack without npm: "
            "run `npm pack` in an earlier step and set NPM_PACKAGE to the .tgz it writes."
        )


def posix_clean(value: str) -> str:
    """npm's `path.join('/', value).slice(1)`: normalise and keep the path inside the package."""
    return posixpath.normpath("/" + value.replace("\\", "/")).lstrip("/") if value else ""


def normalized_bins(manifest: dict, folder: Path) -> dict[str, str]:
    """The `bin` map as npm normalises it (string, array, object, or `directories.bin`)."""
    bin_field = manifest.get("bin")
    bin_dir = (manifest.get("directories") or {}).get("bin") if isinstance(manifest.get("directories"), dict) else None
    if bin_dir and isinstance(bin_dir, str) and not bin_field:
        return _bins_from_directory(folder, posix_clean(bin_dir))
    if isinstance(bin_field, str):
        name = manifest.get("name")
        bin_field = {name: bin_field} if name else {}
    elif isinstance(bin_field, list):
        bin_field = {posixpath.basename(str(item)): item for item in bin_field}
    elif not isinstance(bin_field, dict):
        return {}
    clean = {}
    for key, target in bin_field.items():
        name = posix_clean(posixpath.basename(str(key).replace("\\", "/").replace(":", "/")))
        if isinstance(target, str) and name and (cleaned := posix_clean(target)) and cleaned != ".":
            clean[name] = cleaned
    return clean


def _bins_from_directory(folder: Path, bin_dir: str) -> dict[str, str]:
    """`directories.bin`: every entry below it whose path has no dot-named part (glob `**`)."""
    base = folder / bin_dir
    bins: dict[str, str] = {}
    if not base.is_dir():
        return bins
    for current, dirs, files in os.walk(base):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted([*dirs, *files]):
            if name.startswith("."):
                continue
            relative = Path(current, name).relative_to(base).as_posix()
            bins[posixpath.basename(relative)] = f"{bin_dir}/{relative}"
    return bins


def _is_root_bin(path: str, bins: dict[str, str]) -> bool:
    """npm (pacote) makes a file executable when the path *without its first component* equals a
    bin target, which in practice only hits bin targets at the package root."""
    stripped = path.split("/", 1)[1] if "/" in path else path
    return stripped in bins.values()


def _pack_file(folder: Path, path: str, bins: dict[str, str]) -> PackFile:
    try:
        info = os.lstat(folder / path)
    except OSError as exc:
        raise InputError(f"cannot read {path} in the package folder ({exc.strerror}): fix its permissions.") from exc
    mode = stat.S_IMODE(info.st_mode)
    if _is_root_bin(path, bins):
        mode |= 0o111
    return PackFile(path=path, mode=(mode | 0o600) & ~0o022, size=info.st_size)


# ---------------------------------------------------------------------------------------------
# The directory walk (ignore-walk + npm-packlist)
# ---------------------------------------------------------------------------------------------


def _node_join(base: str, relative: str) -> str:
    """node's path.join: normalised, but a trailing slash survives (so "file/" fails to lstat)."""
    joined = posixpath.normpath(base + "/" + relative)
    return joined + "/" if relative.endswith("/") and joined != "/" else joined


def _rules(lines: list[str] | str, source: str = "") -> list[Rule]:
    if isinstance(lines, str):
        lines = lines.replace("\r\n", "\n").split("\n")
    kept = [line.strip() for line in lines]
    return [_rule(line, source) for line in kept if line and not line.startswith("#")]


def _rule(pattern: str, source: str, shown: str | None = None) -> Rule:
    try:
        return compiled_rule(pattern)
    except PatternError as exc:
        raise InputError(
            f'cannot interpret the pattern "{shown or exc.pattern}" in {source} the way npm does ({exc.reason}): '
            "run `npm pack` in an earlier step and set NPM_PACKAGE to the .tgz it writes."
        ) from exc


@dataclass
class _Walker:
    path: Path
    parent: _Walker | None
    rule_sets: list[str]
    is_package: bool = False
    manifest: dict | None = None
    bins: dict[str, str] = field(default_factory=dict)
    required_files: list[str] = field(default_factory=list)
    exact: bool = False
    result: list[str] = field(default_factory=list)
    rules: dict[str, list[Rule] | None] = field(default_factory=dict)
    # package.json's `files` entries that include something, with their rules.
    files_entries: list[tuple[str, list[Rule]]] = field(default_factory=list)
    strict_rules: tuple[str, ...] = tuple(ROOT_STRICT_RULES)

    def __post_init__(self) -> None:
        self.root: _Walker = self.parent.root if self.parent else self
        self.result = self.parent.result if self.parent else []
        self.basename = self.path.name
        self.rules[DEFAULTS] = _rules(DEFAULT_RULES)
        if not self.is_package:
            self.rules[STRICT] = _rules(["/.git", *[f"!{file}" for file in self.required_files]], FILES_SOURCE)

    def walk(self) -> list[str]:
        entries = self._read_dir()
        if entries:
            self._read_rule_files(entries)
            self._drop_overridden_rules()
            for entry in entries:
                self._visit(entry)
        return self.result

    def _read_dir(self) -> list[str]:
        try:
            return os.listdir(self.path)
        except OSError as exc:
            raise InputError(f"cannot list {self._display(self.path)} ({exc.strerror}): fix its permissions.") from exc

    def _display(self, path: Path) -> str:
        relative = path.relative_to(self.root.path).as_posix()
        return "the package folder" if relative == "." else relative

    def _read_rule_files(self, entries: list[str]) -> None:
        present = set(entries)
        for name in self.rule_sets:
            if name not in present or name in (DEFAULTS, STRICT):
                continue
            if name == FILES_FIELD and self.is_package:
                self._apply_manifest()
            else:
                self.rules[name] = _rules(self._read_text(self.path / name), self._display(self.path / name))
        if self.is_package and STRICT not in self.rules:
            # package.json is always present at a package root (the caller parsed it).
            self._apply_manifest()

    def _read_text(self, path: Path) -> str:
        try:
            return path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise InputError(f"cannot read {self._display(path)} ({exc.strerror}): fix its permissions.") from exc

    def _apply_manifest(self) -> None:
        """The `files` field becomes "exclude everything, then include these"; files that exist
        as plain files are also strictly required (no ignore file can drop them)."""
        manifest = self.manifest or {}
        strict = list(self.strict_rules)
        files = manifest.get("files")
        if isinstance(files, list):
            includes = []
            for written in files:
                if not isinstance(written, str):
                    continue
                entry = written[1:] if written.startswith("./") else written
                if entry.endswith("/*"):
                    entry += "*"
                kind = self._lstat_kind(entry.lstrip("!"))
                rules = [f"!{entry}", f"!{entry}/**"] if kind == "dir" else [f"!{entry}"]
                self._note_files_entry(written, rules)
                if kind == "file":
                    strict.insert(0, f"!{entry}")
                    self.required_files.append(entry[1:] if entry.startswith("/") else entry)
                elif kind in ("dir", "missing"):
                    includes += rules
                # anything else (a symbolic link, a socket) is not packed at all, as with npm
            self.rules[FILES_FIELD] = _rules(["*", *includes], FILES_SOURCE)
        for key in ("browser", "main"):
            if isinstance(manifest.get(key), str) and manifest[key]:
                strict.append(f"!/{manifest[key]}")
        for target in self.bins.values():
            strict.append(f"!/{target}")
        self.rules[STRICT] = _rules(strict, 'package.json\'s "main", "browser" and "bin"')

    def _note_files_entry(self, written: str, patterns: list[str]) -> None:
        """Compile the entry's rules now, so that an uninterpretable one is named as written."""
        compiled = [_rule(pattern.strip(), FILES_SOURCE, written) for pattern in patterns]
        if all(rule.negate for rule in compiled):  # a "!x" entry excludes: nothing to look for
            self.files_entries.append((written, compiled))

    def _lstat_kind(self, relative: str) -> str:
        try:
            info = os.lstat(_node_join(str(self.path), relative))
        except (OSError, ValueError):
            return "missing"
        if stat.S_ISREG(info.st_mode):
            return "file"
        if stat.S_ISDIR(info.st_mode):
            return "dir"
        return "other"

    def _drop_overridden_rules(self) -> None:
        # `files` beats .npmignore, which beats .gitignore (per directory).
        if self.rules.get(FILES_FIELD) is not None:
            self.rules[".npmignore"] = None
            self.rules[".gitignore"] = None
        elif self.rules.get(".npmignore") is not None:
            self.rules[".gitignore"] = None

    def _visit(self, entry: str) -> None:
        # npm filters an entry as a file and as a folder before it looks at it; the folder
        # verdict is asked here only when it counts (same outcome, half the matching for files).
        if "*" in entry:
            return
        as_file = self.filter_entry(entry)
        absolute = self.path / entry
        try:
            info = os.lstat(absolute)
        except OSError as exc:
            if not (as_file or self.filter_entry(entry, partial=True)):
                return  # npm never looks at an entry both verdicts leave out
            raise InputError(f"cannot read {self._display(absolute)} ({exc.strerror}): fix its permissions.") from exc
        if stat.S_ISREG(info.st_mode):
            if as_file:
                self.result.append(absolute.relative_to(self.root.path).as_posix())
        elif stat.S_ISDIR(info.st_mode) and self.filter_entry(entry, partial=True):
            child = _Walker(
                absolute,
                parent=self,
                rule_sets=CHILD_RULE_SETS,
                required_files=self._required_inside(entry),
                exact=as_file or self.filter_entry(entry + "/"),
            )
            child.walk()
        # anything else (symlink, socket, device) is never packed, as with npm

    def _required_inside(self, entry: str) -> list[str]:
        prefix = entry + "/"
        return [
            file[len(prefix) :]
            for file in self.required_files
            if file.startswith(prefix) and "/" not in file[len(prefix) :]
        ]

    def filter_entry(self, entry: str, partial: bool = False, entry_basename: str | None = None) -> bool:
        """ignore-walk's verdict: does `entry` (relative to this directory) stay in? A parent's
        verdict on `<this dir>/<entry>` comes first; this directory's rules can override it."""
        included = True
        if self.parent is not None:
            included = self.parent.filter_entry(f"{self.basename}/{entry}", partial, entry_basename or entry)
            if not included and not self.exact:
                return False
        for name in self.rule_sets:
            for rule in self.rules.get(name) or []:
                if rule.negate == included:
                    continue
                if self._rule_hits(rule, entry, partial, entry_basename):
                    included = rule.negate
        return included

    @staticmethod
    def _rule_hits(rule: Rule, entry: str, partial: bool, entry_basename: str | None) -> bool:
        if rule.match("/" + entry) or rule.match(entry):
            return True
        if not partial:
            return False
        if rule.match("/" + entry + "/") or rule.match(entry + "/"):
            return True
        if rule.negate and (rule.match("/" + entry, True) or rule.match(entry, True)):
            return True
        if not (entry_basename and rule.is_relative()):
            return False
        if rule.match("/" + entry_basename + "/") or rule.match(entry_basename + "/"):
            return True
        return rule.negate and (rule.match("/" + entry_basename, True) or rule.match(entry_basename, True))


# ---------------------------------------------------------------------------------------------
# Ordering: JavaScript's localeCompare(…, 'en') (ICU root collation) for the characters of paths
# ---------------------------------------------------------------------------------------------

# ASCII in ICU root order (punctuation and symbols are not ignorable, then digits, then letters).
_ICU_ASCII_ORDER = " _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789abcdefghijklmnopqrstuvwxyz"
_PRIMARY = {char: index for index, char in enumerate(_ICU_ASCII_ORDER)}


def _collation_key(text: str) -> tuple:
    """Three levels: base letters (case and accents ignored), then accents, then case (lower
    first). Characters outside ASCII sort after z by code point, an approximation."""
    primary, secondary, tertiary = [], [], []
    for char in text:
        decomposed = unicodedata.normalize("NFD", char)
        base, marks = decomposed[0], decomposed[1:]
        lower = base.lower()
        primary.append(_PRIMARY.get(lower, len(_PRIMARY) + ord(lower)))
        secondary.append(tuple(ord(mark) for mark in marks))
        tertiary.append(0 if base == lower else 1)
    return (primary, secondary, tertiary)


def _extname(base: str) -> str:
    """node's path.extname: nothing for ".gitignore" or "..", the last ".x" otherwise."""
    dot = base.rfind(".")
    if dot <= 0 or base == "..":
        return ""
    return base[dot:]


def npm_sort_key(path: str) -> tuple:
    base = posixpath.basename(path)
    # ignore-walk writes root entries starting with "@" as "./@…" (tar would read "@x" as an
    # archive to concatenate), and compares that form.
    compared = "./" + path if path.startswith("@") else path
    return (_collation_key(_extname(base).lower()), _collation_key(base.lower()), _collation_key(compared))


def sort_like_npm(paths: list[str]) -> list[str]:
    return sorted(paths, key=npm_sort_key)
