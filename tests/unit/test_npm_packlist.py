"""npm's file selection rules, ported as folder fixtures (expected lists checked against npm 11)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from pipe.errors import InputError
from pipe.npm.globmatch import PatternError, Rule, brace_expand
from pipe.npm.packlist import PackFile, likely_secrets, list_package_files, normalized_bins, sort_like_npm
from tests.conftest import base_env, run_in_process
from tests.fixtures.npm.packlist_cases import CASES, Case, File, Link, _pkg, build


def packed(tmp_path: Path, name: str) -> list[PackFile]:
    folder = build(tmp_path / name, CASES[name])
    return list_package_files(folder, CASES[name].manifest)


def paths(tmp_path: Path, name: str) -> list[str]:
    return [entry.path for entry in packed(tmp_path, name)]


# --- the glob engine ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "expanded"),
    [
        ("a{b,c}d", ["abd", "acd"]),
        ("/readme{,.*[^~$]}", ["/readme", "/readme.*[^~$]"]),
        ("x{1..3}", ["x1", "x2", "x3"]),
        ("x{01..03}", ["x01", "x02", "x03"]),
        ("{a,b{c,d}}", ["a", "bc", "bd"]),
        ("a{b}c", ["a{b}c"]),
        ("no-braces", ["no-braces"]),
        ("{a..c}", ["a", "b", "c"]),
    ],
)
def test_brace_expansion(pattern: str, expanded: list[str]) -> None:
    assert brace_expand(pattern) == expanded


@pytest.mark.parametrize(
    ("pattern", "path", "partial", "hit"),
    [
        ("*.js", "lib/deep/x.js", False, True),  # matchBase: slash-free patterns match the basename
        ("*.js", "x.JS", False, True),  # nocase
        ("*", ".hidden", False, True),  # dot
        ("/build", "/build", False, True),
        ("/build", "/src/build", False, False),
        ("test/", "test/", False, True),
        ("test/", "test", False, False),
        ("docs/**", "docs/a/b.md", False, True),
        ("**/tmp", "src/tmp", False, True),
        ("lib/**/fixtures", "lib/a/b/fixtures", False, True),
        ("lib/**/fixtures", "lib", True, True),  # partial: a directory that could contain a match
        ("src/public/**", "src", True, True),
        ("!/x", "/x", False, True),  # flipNegate: a negated rule reports its own match
        ("file[0-9].js", "file5.js", False, True),
        ("file[0-9].js", "fileA.js", False, False),
        ("log-?.txt", "log-12.txt", False, False),
        ("/readme{,.*[^~$]}", "/README.md", False, True),
        ("/readme{,.*[^~$]}", "/README.md~", False, False),
        ("/readme{,.*[^~$]}", "/readme-extra.md", False, False),
        ("**/.git/**", "a/.git/HEAD", False, True),
        ("#comment", "#comment", False, False),
    ],
)
def test_rule_matching(pattern: str, path: str, partial: bool, hit: bool) -> None:
    assert Rule(pattern).match(path, partial) is hit


# Each row checked against the minimatch inside npm 11 (the parity test compares many more).
@pytest.mark.parametrize(
    ("pattern", "path", "partial", "hit"),
    [
        # @(…): exactly one of the alternatives
        ("@(a|b).txt", "a.txt", False, True),
        ("@(a|b).txt", "ab.txt", False, False),
        ("@(a|b).txt", "lib/b.TXT", False, True),
        # ?(…): zero or one
        ("?(pre-)main.mjs", "main.mjs", False, True),
        ("?(pre-)main.mjs", "pre-main.mjs", False, True),
        ("?(pre-)main.mjs", "prepre-main.mjs", False, False),
        # +(…): one or more
        ("lib/*.+(js|cjs)", "lib/a.cjs", False, True),
        ("lib/*.+(js|cjs)", "lib/a.jscjs", False, True),
        ("lib/*.+(js|cjs)", "lib/a.ts", False, False),
        ("lib/*.+(js|cjs)", "lib/sub/a.js", False, False),
        ("lib/*.+(js|cjs)", "lib", True, True),
        # *(…): zero or more, so ".bin" too (dot: true)
        ("*(ab).bin", ".bin", False, True),
        ("*(ab).bin", "abab.bin", False, True),
        ("*(ab).bin", "a.bin", False, False),
        # !(…): anything but, tested against the rest of the name
        ("dist/cjs/**/!(*.tsbuildinfo)", "dist/cjs/sub/x.js", False, True),
        ("dist/cjs/**/!(*.tsbuildinfo)", "dist/cjs/tsconfig.tsbuildinfo", False, False),
        ("dist/cjs/**/!(*.tsbuildinfo)", "dist", True, True),
        ("docs/!(draft)*.md", "docs/draft-2.md", False, False),
        ("docs/!(draft)*.md", "docs/adraft.md", False, True),
        ("x!(a)b", "xab", False, False),
        ("x!(a)b", "xaab", False, True),
        ("x!(a)b", "xb", False, True),
        ("*.!(js)", "a.js", False, False),
        ("*.!(js)", "a.js.map", False, True),
        ("src/!(*.test|*.spec).ts", "src/a.spec.ts", False, False),
        ("src/!(*.test|*.spec).ts", "src/a.ts", False, True),
        # a leading "!" is the rule's negation, so "!(a)" is "(a)" negated
        ("!(a)", "(a)", False, True),
        ("!(a)", "b", False, False),
        # nested, simplified as minimatch does
        ("types/@(x|+(y|z)).d.ts", "types/zzy.d.ts", False, True),
        ("types/@(x|+(y|z)).d.ts", "types/xy.d.ts", False, False),
        ("+(a|?(b))c", "c", False, True),
        ("@(x|*(y|+(z)))q", "q", False, True),
        ("@(x|*(y|+(z)))q", "yzq", False, True),
        ("@(x|*(y|+(z)))q", "wq", False, False),
        ("x/!(!(a))b", "x/ab", False, False),
        ("x/!(!(a))b", "x/abb", False, True),
        # not extended globs: unclosed, escaped, inside a class, an empty one as the whole segment
        ("@(a", "@(a", False, True),
        ("\\@(a)", "@(a)", False, True),
        ("[@](a)", "@(a)", False, True),
        ("@()", "@()", False, True),
        ("@(a\\|b)", "a", False, True),
    ],
)
def test_extended_glob_matching(pattern: str, path: str, partial: bool, hit: bool) -> None:
    assert Rule(pattern).match(path, partial) is hit


def test_a_pattern_that_cannot_be_reproduced_is_an_error_naming_it() -> None:
    with pytest.raises(PatternError) as caught:
        Rule("lib/!()*()")
    assert caught.value.pattern == "lib/!()*()"
    assert caught.value.reason == "it makes no valid regular expression: multiple repeat"
    with pytest.raises(PatternError) as too_long:
        Rule("a" * 70_000)
    assert too_long.value.reason == "it is longer than npm's limit of 65536 characters"


def test_negation_is_parsed_and_repeated_bangs_cancel() -> None:
    assert Rule("!x").negate is True
    assert Rule("!!x").negate is False


# --- selection rules (the same cases the parity test runs through npm) ------------------------------


def test_always_excluded_files_and_folders(tmp_path: Path) -> None:
    assert paths(tmp_path, "defaults-junk") == [
        ".eslintrc",
        ".gitattributes",
        "index.js",
        "lib/node_modules/inner.js",
        "lib/util.js",
        "lib/package-lock.json",
        "package.json",
        "lib/yarn.lock",
        "build/Release/addon.node",
    ]


def test_readme_license_licence_copying_are_always_included_in_any_case(tmp_path: Path) -> None:
    assert sorted(paths(tmp_path, "always-included-docs")) == sorted(
        [
            "COPYING",
            "LICENSE",
            "Readme",
            "index.js",
            "package.json",
            "copying.lesser",
            "LICENCE.md",
            "README.md",
            "license.txt",
            "readme.txt",
        ]
    )


def test_npmignore_cannot_drop_package_json_or_docs(tmp_path: Path) -> None:
    assert sorted(paths(tmp_path, "docs-not-overridable-by-npmignore")) == sorted(
        ["Copying", "licence", "index.js", "package.json", "README.markdown", "LICENSE.txt"]
    )


def test_files_field_with_globs_negations_and_directories(tmp_path: Path) -> None:
    assert sorted(paths(tmp_path, "files-globs-negations-dirs")) == sorted(
        [
            "lib/.hidden",
            "templates/.keep",
            "bin/cli",
            "a.cjs",
            "b.cjs",
            "templates/t.html",
            "dist/bundle.js",
            "dist/nested/chunk.js",
            "lib/index.js",
            "package.json",
            "schema.json",
            "docs/guide.md",
            "esm.mjs",
            "types/index.d.ts",
            "types/sub/x.d.ts",
        ]
    )


def test_nested_npmignore_applies_inside_files_but_not_to_named_files(tmp_path: Path) -> None:
    assert sorted(paths(tmp_path, "files-field-and-nested-ignore")) == ["lib/a.js", "lib/keep.test.js", "package.json"]
    assert sorted(paths(tmp_path, "files-with-file-ignored-in-subdir")) == ["dist/index.js", "package.json", "root.js"]


def test_files_field_dotfiles_and_empty_list(tmp_path: Path) -> None:
    assert sorted(paths(tmp_path, "files-dotfiles-and-empty-dirs")) == sorted(
        ["lib/.babelrc", "lib/x/y/z.js", "data.json", "package.json", ".config/settings.json"]
    )
    assert sorted(paths(tmp_path, "files-empty-list")) == ["README.md", "main.js", "package.json"]


def test_nested_npmignore_files_and_rule_shapes(tmp_path: Path) -> None:
    assert sorted(paths(tmp_path, "nested-npmignore")) == sorted(
        [
            "src/a.js",
            "lib/index.js",
            "src/build/inner.js",
            "package.json",
            "src/deep/app.log",
            "docs/keep.md",
            "src/keep.ts",
        ]
    )


def test_gitignore_is_the_fallback_and_npmignore_wins_per_folder(tmp_path: Path) -> None:
    assert sorted(paths(tmp_path, "gitignore-fallback")) == ["index.js", "package.json", "src/dist/y.js", "sub/kept.js"]
    assert sorted(paths(tmp_path, "npmignore-overrides-gitignore")) == sorted(
        ["lib/gen.js", "other/keep.js", "dist/x.js", "package.json", "debug.log"]
    )


def test_main_browser_and_bin_targets_are_required_and_root_bins_become_executable(tmp_path: Path) -> None:
    modes = {entry.path: entry.mode for entry in packed(tmp_path, "main-and-bin-targets")}
    assert modes == {
        "dist/browser.js": 0o644,
        "lib/index.js": 0o644,
        "dist/main.js": 0o644,
        "root-tool.js": 0o755,  # npm adds +x only to bin targets at the package root
        "bin/tool.js": 0o644,
        "dist/x.js": 0o600,
        "package.json": 0o644,
    }


def test_bin_string_and_main_with_dot_slash(tmp_path: Path) -> None:
    # "./index.js" as main does not force the file in (npm's rule is "!/./index.js"), the bin does.
    modes = {entry.path: entry.mode for entry in packed(tmp_path, "bin-string-and-dot-main")}
    assert modes == {"cli.js": 0o751, "package.json": 0o644, "keep.txt": 0o644}


def test_modes_keep_owner_bits_and_drop_group_and_world_write(tmp_path: Path) -> None:
    modes = {entry.path: entry.mode for entry in packed(tmp_path, "modes")}
    assert modes == {
        "lib/exec.js": 0o755,
        "package.json": 0o644,
        "exec.sh": 0o755,
        "owner-exec.sh": 0o700,
        "group-write.txt": 0o644,
        "odd.txt": 0o751,
        "private.txt": 0o600,
        "readonly.txt": 0o644,
        "world-write.txt": 0o644,
    }


def test_symlinks_and_names_with_a_star_are_never_packed(tmp_path: Path) -> None:
    listed = paths(tmp_path, "odd-names-and-links")
    for skipped in ("link.js", "linkdir/x.js", "outside/passwd", "dangling.js", "star*.js"):
        assert skipped not in listed
    assert "@scope/pkg/index.js" in listed and "ünïcödé.js" in listed and "[brackets].js" in listed


def test_rules_are_case_insensitive_and_support_braces_and_classes(tmp_path: Path) -> None:
    assert sorted(paths(tmp_path, "case-insensitive-rules")) == ["keep.js", "package.json"]
    assert sorted(paths(tmp_path, "brace-and-class-rules")) == sorted(
        ["file5.js", "fileA.js", "c/x.js", "x.js", "package.json", "log-12.txt"]
    )


def test_negation_can_reach_into_an_ignored_folder(tmp_path: Path) -> None:
    assert sorted(paths(tmp_path, "negation-reaching-into-ignored-dir")) == sorted(
        [
            "test/a.js",
            "src/public/b.js",
            "src/public/deep/c.js",
            "test/fixtures/drop.json",
            "test/fixtures/keep.json",
            "package.json",
        ]
    )


def test_order_is_extension_then_basename_then_path_with_locale_collation(tmp_path: Path) -> None:
    assert paths(tmp_path, "sort-order") == [
        "README",
        "z.css",
        "Z.CSS",
        "_a.js",
        ".a.js",
        "$a.js",
        "1.js",
        "10.js",
        "2.js",
        "a_b.js",
        "a-b.js",
        "a.js",
        "A.js",
        "x/a.js",
        "x/A.js",
        "ab.js",
        "b.js",
        "B.JS",
        "e.js",
        "é.js",
        "index.js",
        "lib/index.js",
        "y/b.json",
        "package.json",
        "readme.md",
        "index.mjs",
        "a.d.ts",
        "a.ts",
    ]


def test_scoped_root_folders_sort_as_dot_slash_at() -> None:
    # ignore-walk compares root "@…" entries as "./@…", so they come after "_…" and "-…".
    assert sort_like_npm(["@s/index.js", "_p/index.js", "-d/index.js"]) == ["_p/index.js", "-d/index.js", "@s/index.js"]


def test_sizes_are_reported(tmp_path: Path) -> None:
    case_files = {entry.path: entry.size for entry in packed(tmp_path, "bin-string-and-dot-main")}
    assert case_files["keep.txt"] == 1


# --- manifest normalisation and refusals ---------------------------------------------------------------


def test_bin_normalisation_like_npm(tmp_path: Path) -> None:
    assert normalized_bins({"name": "@s/tool", "bin": "./cli.js"}, tmp_path) == {"tool": "cli.js"}
    assert normalized_bins({"name": "x", "bin": ["bin/a.js", "./b"]}, tmp_path) == {"a.js": "bin/a.js", "b": "b"}
    assert normalized_bins({"name": "x", "bin": {"c": "../../escape.js", "d": 3}}, tmp_path) == {"c": "escape.js"}
    assert normalized_bins({"name": "x"}, tmp_path) == {}


def test_bundle_dependencies_are_refused_with_the_way_out(tmp_path: Path) -> None:
    folder = build(tmp_path / "bundled", CASES["modes"])
    with pytest.raises(InputError) as caught:
        list_package_files(folder, {"name": "b", "version": "1.0.0", "bundleDependencies": ["dep"]})
    assert str(caught.value) == (
        "package.json lists bundleDependencies, which this pipe cannot pack without npm: "
        "run `npm pack` in an earlier step and set NPM_PACKAGE to the .tgz it writes."
    )


def test_unlistable_folder_is_an_input_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = build(tmp_path / "locked", CASES["modes"])
    real_listdir = __import__("os").listdir

    def refuse(path):
        if str(path).endswith("/lib"):
            raise PermissionError(13, "Permission denied")
        return real_listdir(path)

    monkeypatch.setattr("pipe.npm.packlist.os.listdir", refuse)
    with pytest.raises(InputError) as caught:
        list_package_files(folder, json.loads((folder / "package.json").read_text()))
    assert str(caught.value) == "cannot list lib (Permission denied): fix its permissions."


def test_fixture_builder_makes_links_and_modes(tmp_path: Path) -> None:
    from tests.fixtures.npm.packlist_cases import Case

    folder = build(tmp_path / "f", Case({"name": "f", "version": "1.0.0"}, {"x": File("x", 0o700), "l": Link("x")}))
    assert (folder / "l").is_symlink() and (folder / "x").stat().st_mode & 0o777 == 0o700


# --- secrets --------------------------------------------------------------------------------------


def test_likely_secrets_names_credentials_and_skips_examples() -> None:
    files = [
        PackFile(path, 0o644, 1)
        for path in [
            ".env",
            "config/.env.production",
            "certs/server.pem",
            "keys/private.key",
            ".ssh/id_rsa",
            "id_ed25519",
            "credentials.json",
            "store.p12",
            ".npmrc.bak",
            ".env.example",
            "id_rsa.pub",
            "lib/index.js",
            "keyboard.js",
            "README.md",
        ]
    ]
    assert likely_secrets(files) == [
        ".env",
        "config/.env.production",
        "certs/server.pem",
        "keys/private.key",
        ".ssh/id_rsa",
        "id_ed25519",
        "credentials.json",
        "store.p12",
    ]


# --- extended globs, uninterpretable patterns, entries that match nothing -------------------------

UNREADABLE_FILES_LINE = (
    '✖ cannot interpret the pattern "lib/!()*()" in package.json\'s "files" the way npm does (it makes no valid '
    "regular expression: multiple repeat): run `npm pack` in an earlier step and set NPM_PACKAGE to the .tgz it "
    "writes."
)


def empty_entry_warning(entry: str) -> str:
    return (
        f'"files" entry "{entry}" in package.json matches no file in the package folder, so the package holds '
        "nothing from it: check the entry, and that the build ran before this step."
    )


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]


def test_extended_globs_in_files_npmignore_and_gitignore(tmp_path: Path) -> None:
    assert sorted(paths(tmp_path, "extglob-files-field")) == sorted(
        [
            "a.txt",
            "assets/.bin",
            "assets/ab.bin",
            "assets/abab.bin",
            "b.txt",
            "dist/cjs/index.js",
            "dist/cjs/sub/x.js",
            "docs/adraft.md",
            "docs/guide.md",
            "lib/a.js",
            "lib/b.cjs",
            "main.mjs",
            "package.json",
            "pre-main.mjs",
            "src/a.ts",
            "types/x.d.ts",
            "types/y.d.ts",
            "types/zzy.d.ts",
        ]
    )
    # "!(keep)*.log" is the negation of "(keep)*.log" (parentheses as text), as npm reads it.
    assert sorted(paths(tmp_path, "extglob-npmignore")) == sorted(
        [
            "(keep)x.log",
            "a.js",
            "important.log",
            "lib/tmpx/z.js",
            "package.json",
            "src/deep/other.ts",
            "src/index.ts",
            "test/unit/t.js",
            "wq",
        ]
    )
    assert sorted(paths(tmp_path, "extglob-gitignore")) == sorted(
        ["build/z.c", "notes.txt", "package.json", "sample/s.js", "sub/Makefile", "sub/a.js"]
    )


def test_an_uninterpretable_ignore_file_line_is_named_with_its_file(tmp_path: Path) -> None:
    case = Case(_pkg("unreadable"), {"lib/.npmignore": "*.map\nx/!()*()\n", "lib/a.js": "x"})
    folder = build(tmp_path / "unreadable", case)
    with pytest.raises(InputError) as caught:
        list_package_files(folder, case.manifest)
    assert str(caught.value) == (
        'cannot interpret the pattern "x/!()*()" in lib/.npmignore the way npm does (it makes no valid regular '
        "expression: multiple repeat): run `npm pack` in an earlier step and set NPM_PACKAGE to the .tgz it writes."
    )


def test_an_uninterpretable_files_entry_ends_the_run_with_one_line(workdir: Path) -> None:
    from tests.unit.npm_fake import ScriptedNpmRegistry

    manifest = {"name": "widget", "version": "1.2.0", "files": ["index.js", "lib/!()*()"]}
    build(workdir, Case(manifest, {"index.js": "x", "lib/a.js": "x"}))
    registry = ScriptedNpmRegistry({})  # the registry must not be asked when the package cannot be packed
    env = base_env(PACKAGE_TYPE="npm", REGISTRY_URL="https://npm.example/acme/")
    result = run_in_process(env, workdir, transport=registry)
    assert result.code == 1
    assert result.last_line == UNREADABLE_FILES_LINE
    assert [line for line in result.lines if line.startswith("✖")] == [UNREADABLE_FILES_LINE]
    assert "Traceback" not in result.output
    assert registry.requests == []


def test_a_files_entry_that_matches_nothing_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="pipe.npm")
    packed(tmp_path, "files-globs-negations-dirs")
    assert warnings(caplog) == [empty_entry_warning("missing-entry")]
    caplog.clear()
    packed(tmp_path, "extglob-files-field")  # every entry brings something in
    packed(tmp_path, "files-dotfiles-and-empty-dirs")
    assert warnings(caplog) == [empty_entry_warning("empty")]  # an empty folder packs nothing


def test_entries_covered_through_a_folder_or_a_required_file_are_not_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pipe.npm")
    manifest = _pkg("covered", files=["+(dist|out)/**", "README.md", "./lib/", "!lib/test", "docs/*.md", "gone/**"])
    tree = {"dist/a.js": "x", "README.md": "x", "lib/a.js": "x", "lib/test/t.js": "x", "docs/x.txt": "x"}
    folder = build(tmp_path / "covered", Case(manifest, tree))
    listed = sorted(f.path for f in list_package_files(folder, manifest))
    assert listed == ["README.md", "dist/a.js", "lib/a.js", "package.json"]  # as npm pack lists it
    assert warnings(caplog) == [empty_entry_warning("docs/*.md"), empty_entry_warning("gone/**")]

    # A pattern that matches a folder's name brings none of its files in (npm pack agrees).
    caplog.clear()
    only_the_folder_name = dict(manifest, files=["dist*"])
    assert sorted(f.path for f in list_package_files(folder, only_the_folder_name)) == ["README.md", "package.json"]
    assert warnings(caplog) == [empty_entry_warning("dist*")]


def test_the_warning_reaches_the_run_output(workdir: Path) -> None:
    from tests.unit.npm_fake import ScriptedNpmRegistry
    from tests.unit.test_npm_publish import REGISTRY, run

    manifest = {"name": "widget", "version": "1.2.0", "files": ["index.js", "dist/cjs/**/!(*.map)", "dist/esm"]}
    build(workdir, Case(manifest, {"index.js": "x", "dist/cjs/a.js": "x", "dist/cjs/a.js.map": "x"}))
    result = run(ScriptedNpmRegistry({("GET", REGISTRY + "widget"): [(404, {})]}), workdir, DRY_RUN="true")
    assert result.code == 0, result.output
    assert "⚠ " + empty_entry_warning("dist/esm") in result.lines
    assert [line for line in result.lines if line.startswith("⚠")] == ["⚠ " + empty_entry_warning("dist/esm")]
    assert "Files in the package (3):" in result.lines
