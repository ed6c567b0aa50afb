"""npm's `normalizeData` (once normalize-package-data, now in @npmcli/package-json), the last step
of what `npm publish` does to package.json before sending it: description from the README,
`bugs` and `homepage` from a hosted repository, people as `{name, email, url}` objects, and the
clean-up of `files`, `keywords`, `man` and `bundleDependencies`. Pure: it reads no files.

JavaScript's truthiness decides as it does in npm: "" / 0 / null / false are absent, [] and {}
are present."""

from __future__ import annotations

import re

from pipe.npm import hosted_git

NO_README = "ERROR: No README data found!"
# JavaScript's String.prototype.trim: its white space and line terminators (BOM included).
_JS_SPACE = "\t\n\x0b\x0c\r \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"  # noqa: E501


def truthy(value: object) -> bool:
    """JavaScript's truthiness: [] and {} are true; "", 0, null and false are not."""
    if isinstance(value, list | dict):
        return True
    return bool(value)


def js_trim(text: str) -> str:
    return text.strip(_JS_SPACE)


def js_string(value: object) -> str:
    """`"" + value` for the JSON values a manifest holds."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ",".join("" if item is None else js_string(item) for item in value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)


def url_can_parse(value: object) -> bool:
    """`URL.canParse(value)`: an absolute URL by the WHATWG rules."""
    return hosted_git.parse_whatwg(js_string(value)) is not None


def is_email(text: str) -> bool:
    return "@" in text and text.index("@") < text.rfind(".")


def extract_description(readme: str) -> str:
    """The README's first paragraph that is no heading, on one line."""
    lines = js_trim(readme).split("\n")
    start = 0
    while start < len(lines) and re.match(r"^(#|$)", js_trim(lines[start])):
        start += 1
    end = start + 1
    while end < len(lines) and js_trim(lines[end]):
        end += 1
    return js_trim(" ".join(lines[start:end]))


def person(value: object) -> dict[str, str]:
    """ "Name <email> (url)" (or an object of those parts) as `{name, email, url}`."""
    if not isinstance(value, str):
        fields = value if isinstance(value, dict) else {}
        name = fields.get("name") if truthy(fields.get("name")) else ""
        url = fields.get("url") if truthy(fields.get("url")) else fields.get("web")
        email = fields.get("email") if truthy(fields.get("email")) else fields.get("mail")
        value = (
            js_string(name)
            + (f" <{js_string(email)}>" if truthy(email) else "")
            + (f" ({js_string(url)})" if truthy(url) else "")
        )
    parsed: dict[str, str] = {}
    name = re.match(r"^([^(<]+)", value)
    url = re.search(r"\(([^()]+)\)", value)
    email = re.search(r"<([^<>]+)>", value)
    if name and js_trim(name.group(0)):
        parsed["name"] = js_trim(name.group(0))
    if email:
        parsed["email"] = email.group(1)
    if url:
        parsed["url"] = url.group(1)
    return parsed


def fix_description(data: dict) -> None:
    if truthy(data.get("description")) and not isinstance(data["description"], str):
        del data["description"]
    readme = data.get("readme")
    if truthy(readme) and not truthy(data.get("description")) and readme != NO_README:
        data["description"] = extract_description(js_string(readme))


def fix_files(data: dict) -> None:
    files = data.get("files")
    if truthy(files) and not isinstance(files, list):
        del data["files"]
    elif truthy(files):
        data["files"] = [item for item in files if item and isinstance(item, str)]


def fix_bugs(data: dict) -> None:
    bugs, repository = data.get("bugs"), data.get("repository")
    repository_url = repository.get("url") if isinstance(repository, dict) else None
    if not truthy(bugs) and truthy(repository_url):
        hosted = hosted_git.from_url(repository_url)
        if hosted and hosted.bugs():
            data["bugs"] = {"url": hosted.bugs()}
        return
    if not truthy(bugs):
        return
    if isinstance(bugs, str):
        if is_email(bugs):
            data["bugs"] = {"email": bugs}
        elif url_can_parse(bugs):
            data["bugs"] = {"url": bugs}
        return
    old = dict(bugs) if isinstance(bugs, dict) else {}
    for key in [key for key in old if key in ("web", "name")]:  # in the object's order, as npm
        old["url"] = old.pop(key)
    fixed = {}
    if truthy(old.get("url")) and url_can_parse(old["url"]):
        fixed["url"] = old["url"]
    if isinstance(old.get("email"), str) and is_email(old["email"]):
        fixed["email"] = old["email"]
    if fixed:
        data["bugs"] = fixed
    else:
        del data["bugs"]


def fix_keywords(data: dict) -> None:
    if isinstance(data.get("keywords"), str):
        data["keywords"] = re.split(r",\s+", data["keywords"])
    keywords = data.get("keywords")
    if truthy(keywords) and not isinstance(keywords, list):
        del data["keywords"]
    elif truthy(keywords):
        data["keywords"] = [word for word in keywords if word and isinstance(word, str)]


def fix_bundle_dependencies(data: dict) -> None:
    if truthy(data.get("bundledDependencies")) and not truthy(data.get("bundleDependencies")):
        data["bundleDependencies"] = data.pop("bundledDependencies")
    bundled = data.get("bundleDependencies")
    if truthy(bundled) and not isinstance(bundled, list):
        del data["bundleDependencies"]
    elif truthy(bundled):
        kept = [name for name in bundled if name and isinstance(name, str)]
        data["bundleDependencies"] = kept
        for name in kept:
            if not truthy(data.get("dependencies")):
                data["dependencies"] = {}
            if isinstance(data["dependencies"], dict) and name not in data["dependencies"]:
                data["dependencies"][name] = "*"


def fix_homepage(data: dict) -> None:
    repository = data.get("repository")
    repository_url = repository.get("url") if isinstance(repository, dict) else None
    if not truthy(data.get("homepage")) and truthy(repository_url):
        hosted = hosted_git.from_url(repository_url)
        if hosted:
            data["homepage"] = hosted.docs()
    homepage = data.get("homepage")
    if truthy(homepage):
        if not isinstance(homepage, str):
            del data["homepage"]
        elif not url_can_parse(homepage):
            data["homepage"] = "http://" + homepage


def fix_people(data: dict) -> None:
    if truthy(data.get("author")):
        data["author"] = person(data["author"])
    for key in ("maintainers", "contributors"):
        if isinstance(data.get(key), list):
            data[key] = [person(item) for item in data[key]]


def normalize_data(data: dict) -> None:
    """npm's normalizeData, in npm's order, on `data` in place."""
    fix_description(data)
    if truthy(data.get("modules")):
        del data["modules"]
    fix_files(data)
    if data.get("man") and isinstance(data["man"], str):
        data["man"] = [data["man"]]
    fix_bugs(data)
    fix_keywords(data)
    fix_bundle_dependencies(data)
    fix_homepage(data)
    if not truthy(data.get("readme")):
        data["readme"] = NO_README
    fix_people(data)
