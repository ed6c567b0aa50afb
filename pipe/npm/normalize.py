"""The manifest `npm publish` (npm 11) sends under `versions[<version>]`, made from package.json
by the same steps: for a folder, @npmcli/package-json's `fix` then its `prepare` (what
read-package-json did: README, `bin`/`man` from `directories`, `types` beside `main`, `gitHead`,
`scripts` for *.gyp and server.js, `contributors` from AUTHORS, then normalizeData); for a
`.tgz`, `prepare` alone (pacote's reading of a tarball). The tarball's own package.json is never
changed by any of this: npm sends the normalized copy only in the registry's document."""

from __future__ import annotations

import copy
import re

from pipe.npm import hosted_git
from pipe.npm.normalize_data import NO_README, js_trim, normalize_data, truthy
from pipe.npm.package_tree import PackageTree

FIX_STEPS = frozenset(
    {"binRefs", "bundleDependencies", "fixName", "fixVersionField", "fixRepositoryField", "fixDependencies"}
    | {"devDependencies", "scriptpath"}
)
PREPARE_STEPS = frozenset(
    {"_id", "_attributes", "bundledDependencies", "bundleDependencies", "bundleDependenciesDeleteFalse"}
    | {"gypfile", "serverjs", "scriptpath", "authors", "readme", "mans", "binDir", "gitHead", "fillTypes"}
    | {"normalizeData", "binRefs"}
)
_MARKDOWN = re.compile(r"\.m?a?r?k?d?o?w?n?$", re.IGNORECASE)
_BIN_PREFIX = re.compile(r"^(\.[/\\])?node_modules[/\\].bin[\\/]")
_MAN_PAGE = re.compile(r"^[^.].*\.[0-9]$", re.DOTALL)


# --- Node's path module (POSIX), as npm's steps use it ------------------------------------------


def node_normalize(path: str) -> str:
    if not path:
        return "."
    absolute, trailing = path.startswith("/"), path.endswith("/")
    parts: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == ".." and parts and parts[-1] != "..":
            parts.pop()
        elif segment != ".." or not absolute:
            parts.append(segment)
    joined = "/".join(parts)
    if not joined:
        return "/" if absolute else ("./" if trailing else ".")
    joined += "/" if trailing else ""
    return "/" + joined if absolute else joined


def node_join(*parts: str) -> str:
    joined = "/".join(part for part in parts if part)
    return node_normalize(joined) if joined else "."


def node_basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def node_dirname(path: str) -> str:
    stripped = path.rstrip("/")
    if "/" not in stripped:
        return "/" if path.startswith("/") else "."
    head = stripped.rsplit("/", 1)[0].rstrip("/")
    return head or "/"


def node_extname(path: str) -> str:
    base = node_basename(path)
    dot = base.rfind(".")
    return "" if dot <= 0 or base == ".." else base[dot:]


def secure_and_unixify(ref: str) -> str:
    """A path from package.json made relative and inside the package; "" when nothing is left."""

    def unixify(text: str) -> str:
        return re.sub(r"[\\:]", "/", text)

    secured = unixify(node_join(".", node_join("/", unixify(ref))))
    return "" if secured.startswith("./") else secured


# --- bin and man -----------------------------------------------------------------------------


def normalize_bin(data: dict) -> None:
    """npm-normalize-package-bin: `bin` as {command: path inside the package}."""
    bin_field = data.get("bin")
    if isinstance(bin_field, str) and bin_field and data.get("name"):
        bin_field = {data["name"]: bin_field}
    elif isinstance(bin_field, list):
        bin_field = {node_basename(item): item for item in bin_field if isinstance(item, str)}
    if not isinstance(bin_field, dict):
        data.pop("bin", None)
        return
    for key in list(bin_field):
        value = bin_field.get(key)
        base = node_basename(secure_and_unixify(key))
        target = secure_and_unixify(value) if isinstance(value, str) else ""
        if not base or not target:
            bin_field.pop(key, None)
            continue
        if base != key:
            bin_field.pop(key, None)
        bin_field[base] = target
    if bin_field:
        data["bin"] = bin_field
    else:
        data.pop("bin", None)


def normalize_man(data: dict) -> None:
    man = data.get("man")
    pages = [secure_and_unixify(page) for page in (man if isinstance(man, list) else [man]) if isinstance(page, str)]
    if truthy(man) and pages:
        data["man"] = pages
    else:
        data.pop("man", None)


# --- the steps that read no files --------------------------------------------------------------


def _bundle_dependencies(data: dict, steps: frozenset[str]) -> None:
    if "bundledDependencies" in steps:
        if "bundleDependencies" not in data and "bundledDependencies" in data:
            data["bundleDependencies"] = data["bundledDependencies"]
        data.pop("bundledDependencies", None)
    if "bundleDependencies" not in steps:
        return
    bundled = data.get("bundleDependencies")
    if bundled is False and "bundleDependenciesDeleteFalse" not in steps:
        data["bundleDependencies"] = []
    elif bundled is True:
        dependencies = data.get("dependencies")
        data["bundleDependencies"] = list(dependencies) if isinstance(dependencies, dict) else []
    elif isinstance(bundled, dict):
        data["bundleDependencies"] = list(bundled)
    elif not isinstance(bundled, list):
        data.pop("bundleDependencies", None)


def _scripts(data: dict, steps: frozenset[str]) -> None:
    if "scripts" not in data:
        return
    scripts = data["scripts"]
    if scripts is None or isinstance(scripts, list):
        return  # JavaScript: typeof null/[] is "object", left as they are
    if not isinstance(scripts, dict):
        del data["scripts"]
        return
    for name in list(scripts):
        if not isinstance(scripts[name], str):
            del scripts[name]
        elif "scriptpath" in steps and _BIN_PREFIX.search(scripts[name]):
            scripts[name] = _BIN_PREFIX.sub("", scripts[name], count=1)


def _repository(data: dict) -> None:
    repositories = data.get("repositories")
    if truthy(repositories):
        first = repositories[0] if isinstance(repositories, list | str) and repositories else None
        if first is None:
            data.pop("repository", None)
        else:
            data["repository"] = first
    repository = data.get("repository")
    if not truthy(repository):
        return
    if isinstance(repository, str):
        repository = data["repository"] = {"type": "git", "url": repository}
    url = repository.get("url") if isinstance(repository, dict) else None
    hosted = hosted_git.from_url(url)
    if hosted:
        normalized = hosted.https() if hosted.default == "shortcut" else hosted.to_string()
        if normalized != url:
            repository["url"] = normalized


def _dependency_lists(data: dict) -> None:
    """Dependencies given as a string or an array become objects (npm's old shorthand)."""
    for kind in ("dependencies", "devDependencies", "optionalDependencies"):
        value = data.get(kind)
        if isinstance(value, str) and value:
            value = re.split(r"[\n\r\s\t ,]+", js_trim(value))
        if isinstance(value, list):
            converted = {}
            for item in value:
                if isinstance(item, str):
                    name, *rest = re.split(r"(:?[@\s><=])", js_trim(item))
                    converted[name] = js_trim(re.sub(r"^@", "", "".join(rest)))
            data[kind] = converted


def _dependencies(data: dict) -> None:
    _dependency_lists(data)
    for kind in ("dependencies", "devDependencies"):
        if kind not in data:
            continue
        if not isinstance(data[kind], dict):
            del data[kind]
            continue
        for name in list(data[kind]):
            spec = data[kind][name]
            if not isinstance(spec, str):
                del data[kind][name]
                continue
            hosted = hosted_git.from_url(spec)
            written = hosted.to_string() if hosted else None
            if written and written != spec:
                data[kind][name] = written


def sync_steps(data: dict, steps: frozenset[str]) -> None:
    """@npmcli/package-json's synchronous steps, in its order. Name and version were checked
    (and the version cleaned) before; the name is trimmed as npm trims it."""
    if isinstance(data.get("name"), str):
        data["name"] = js_trim(data["name"])
    if "_attributes" in steps:
        for key in [key for key in data if key.startswith("_")]:
            del data[key]
    if "_id" in steps and data.get("name") and data.get("version"):
        data["_id"] = f"{data['name']}@{data['version']}"
    _bundle_dependencies(data, steps)
    if "scripts" in steps or "scriptpath" in steps:
        _scripts(data, steps)
    if steps & {"fixRepositoryField", "normalizeData"}:
        _repository(data)
    if steps & {"fixDependencies", "normalizeData"}:
        _dependencies(data)
    if "normalizeData" in steps:
        normalize_data(data)


# --- the steps that look at the package's files -----------------------------------------------


def _root_names(tree: PackageTree) -> list[tuple[str, bool]]:
    return tree.entries("") or []


def _install_scripts(data: dict, tree: PackageTree) -> None:
    """`node-gyp rebuild` when a *.gyp file is at the root, `node server.js` when server.js is."""
    given = data.get("scripts")
    if truthy(given) and not isinstance(given, dict):
        return  # npm's assignments to a non-object are lost; only `gypfile` would change
    scripts = given if isinstance(given, dict) else {}
    has_gyp = any(name.endswith(".gyp") and not name.startswith(".") for name, _ in _root_names(tree))
    if (
        not truthy(scripts.get("install"))
        and not truthy(scripts.get("preinstall"))
        and data.get("gypfile") is not False
        and has_gyp
    ):
        scripts["install"] = "node-gyp rebuild"
        data["scripts"], data["gypfile"] = scripts, True
    if not truthy(scripts.get("start")) and tree.exists("server.js"):
        scripts["start"] = "node server.js"
        data["scripts"] = scripts


def _authors(data: dict, tree: PackageTree) -> None:
    if truthy(data.get("contributors")):
        return
    text = tree.read_text("AUTHORS")
    if text is not None:
        lines = (js_trim(re.sub(r"^\s*#.*$", "", line)) for line in re.split(r"\r?\n", text))
        data["contributors"] = [line for line in lines if line]


def _readme(data: dict, tree: PackageTree) -> None:
    """npm's pick: README or README.*, any case, in glob order; the first Markdown-looking one."""
    if truthy(data.get("readme")):
        return
    chosen = None
    for name, is_dir in _root_names(tree):
        lower = name.lower()
        if is_dir or not (lower == "readme" or lower.startswith("readme.")):
            continue
        if _MARKDOWN.search(name):
            chosen = name
            break
        if name.endswith("README"):
            chosen = name
    if chosen:
        data["readme"] = tree.read_text(chosen) or ""
        data["readmeFilename"] = chosen
    if not truthy(data.get("readme")):
        data["readme"] = NO_README


def _mans(data: dict, tree: PackageTree) -> None:
    directories = data.get("directories")
    folder = directories.get("man") if isinstance(directories, dict) else None
    if isinstance(folder, str) and folder and not truthy(data.get("man")):
        base = secure_and_unixify(folder)
        pages = [path for path, _ in tree.walk(base) if _MAN_PAGE.match(node_basename(path))]
        data["man"] = [node_join(base, page) for page in pages]
    normalize_man(data)


def _bins(data: dict, tree: PackageTree) -> None:
    directories = data.get("directories")
    folder = directories.get("bin") if isinstance(directories, dict) else None
    if not (isinstance(folder, str) and folder and not truthy(data.get("bin"))):
        normalize_bin(data)
        return
    base = secure_and_unixify(folder)
    data["bin"] = {node_basename(path): f"{base}/{secure_and_unixify(path)}" for path, _ in tree.walk(base)}


def _types(data: dict, tree: PackageTree) -> None:
    main = data["main"] if truthy(data.get("main")) else "index.js"
    if not isinstance(main, str) or "types" in data or "typings" in data:
        return
    extension = node_extname(main)
    base = node_basename(main)
    stem = base[: -len(extension)] if extension and base.endswith(extension) and base != extension else base
    declaration = f"./{node_join(node_dirname(main), stem)}.d.ts"
    if tree.exists(declaration):
        data["types"] = declaration


def prepare_file_steps(data: dict, tree: PackageTree) -> None:
    _install_scripts(data, tree)
    _authors(data, tree)
    _readme(data, tree)
    _mans(data, tree)
    _bins(data, tree)
    if not truthy(data.get("gitHead")):
        head = tree.git_head()
        if head:
            data["gitHead"] = head
    _types(data, tree)


def publish_manifest(data: dict, version: str, tree: PackageTree, from_tarball: bool) -> dict:
    """package.json (with the version to publish) as npm publish normalizes it, a new object."""
    manifest = copy.deepcopy(data)
    manifest["version"] = version
    if not from_tarball:
        normalize_bin(manifest)  # `npm pkg fix`, which npm publish runs on a folder first
        sync_steps(manifest, FIX_STEPS)
    prepare_file_steps(manifest, tree)
    sync_steps(manifest, PREPARE_STEPS)
    return manifest
