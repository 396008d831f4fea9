"""Which language a file is written in, and how to chunk each language.

`detect_language` maps a path (and its first line, for shebangs) to a language
name. `LANGUAGES` is the declarative chunking table: one `LanguageSpec` per
language saying which tree-sitter node types are definitions, how to read their
names, which definitions are containers whose members get qualified names, and
which sibling nodes (comments, decorators, attributes) attach to the definition
that follows them. The chunker (codesearch/chunk.py) has one code path for all
languages: adding a language is adding an entry here.

Paths into the syntax tree (`Def.name`, `Def.body`, `Def.requires`, ...) are
tuples of steps, each applied to the node reached so far:

    "field"      the child in that grammar field (`child_by_field_name`)
    "@type"      the first named child of that node type ("@a|b": either type)
    "*field"     follow that field repeatedly while it exists (C declarators)
    "=literal"   a fixed name (Swift `init`), only as a name path

Grammars come from tree-sitter-language-pack 0.13.0, which bundles compiled
grammars in its wheel: no download at run time (1.x downloads, and the older
tree-sitter-languages does not work with tree-sitter 0.26).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

Path = tuple[str, ...]


@dataclass(frozen=True)
class Def:
    """How one node type becomes a definition chunk."""

    kind: str  # function | method | class | struct | enum | interface | trait | impl | namespace | type | macro
    name: Path = ("name",)  # path to the node whose text is the name
    name_alt: Path = ()  # tried when `name` does not resolve
    clean: str = "text"  # text | strip_generics | receiver | first_word | unquote
    qualifier: Path = ()  # path to a type that qualifies the name (Go method receivers)
    container: bool = False  # members get qualified names; split into header + members when large
    body: Path = ("body",)  # path to the node whose children are the members / statements
    requires: Path = ()  # the definition only matches when this path resolves ...
    requires_types: frozenset[str] = frozenset()  # ... to one of these node types (if given)
    requires_text: frozenset[str] = frozenset()  # ... or to a node with one of these texts (if given)
    kind_by: tuple[Path, Mapping[str, str]] | None = None  # refine kind by a node's type/tokens/first word
    qualifies: bool = True  # False: a container whose name is not put in front of its members


@dataclass(frozen=True)
class LanguageSpec:
    """The chunking table of one language."""

    name: str
    grammar: str | None  # tree-sitter-language-pack name; None for docs handled by the heading splitter
    extensions: tuple[str, ...]
    definitions: Mapping[str, tuple[Def, ...]] = field(default_factory=dict)
    attached: frozenset[str] = frozenset({"comment"})  # siblings that belong to the next definition
    wrappers: frozenset[str] = frozenset()  # nodes wrapping one definition (export, decorators, templates)
    transparent: frozenset[str] = frozenset()  # nodes whose children are scanned as if at this level
    detached: tuple[str, ...] = ("#!",)  # attachable nodes starting with these never attach (shebangs)
    separator: str = "."  # between a container's name and a member's name
    shebangs: tuple[str, ...] = ()  # interpreter names
    filenames: tuple[str, ...] = ()  # exact file names (Rakefile)
    content_type: str = "code"  # "docs" for Markdown / reStructuredText


def _defs(**entries: Def | tuple[Def, ...]) -> dict[str, tuple[Def, ...]]:
    return {k: (v if isinstance(v, tuple) else (v,)) for k, v in entries.items()}


# Function-valued declarations count as functions: `const f = () => ...`.
_JS_FUNCTION_VALUES = frozenset(
    {"arrow_function", "function_expression", "function", "generator_function"}
)
_JS_VALUE_KIND = {"class": "class", "class_expression": "class"}

_JS_DEFS = _defs(
    function_declaration=Def("function"),
    generator_function_declaration=Def("function"),
    function_signature=Def("function"),
    class_declaration=Def("class", container=True),
    abstract_class_declaration=Def("class", container=True),
    method_definition=Def("method"),
    abstract_method_signature=Def("method"),
    lexical_declaration=Def(
        "function",
        name=("@variable_declarator", "name"),
        requires=("@variable_declarator", "value"),
        requires_types=_JS_FUNCTION_VALUES | {"class"},
        kind_by=(("@variable_declarator", "value"), _JS_VALUE_KIND),
    ),
    variable_declaration=Def(
        "function",
        name=("@variable_declarator", "name"),
        requires=("@variable_declarator", "value"),
        requires_types=_JS_FUNCTION_VALUES | {"class"},
        kind_by=(("@variable_declarator", "value"), _JS_VALUE_KIND),
    ),
    # `module.exports.f = function () {}`, `Foo.prototype.bar = () => {}`
    assignment_expression=Def(
        "function", name=("left",), requires=("right",), requires_types=_JS_FUNCTION_VALUES
    ),
    # class fields holding arrow functions: `handle = () => {}`
    public_field_definition=Def(
        "method", requires=("value",), requires_types=_JS_FUNCTION_VALUES
    ),
    field_definition=Def(
        "method", name=("property",), requires=("value",), requires_types=_JS_FUNCTION_VALUES
    ),
    interface_declaration=Def("interface"),
    type_alias_declaration=Def("type"),
    enum_declaration=Def("enum"),
    internal_module=Def("namespace", container=True),
    module=Def("namespace", clean="unquote", container=True),
)

_JS = dict(
    definitions=_JS_DEFS,
    attached=frozenset({"comment", "decorator"}),
    wrappers=frozenset({"export_statement", "expression_statement", "ambient_declaration"}),
)

_C_DEFS = _defs(
    function_definition=Def("function", name=("*declarator",)),
    struct_specifier=Def("struct", requires=("body",)),
    union_specifier=Def("struct", requires=("body",)),
    enum_specifier=Def("enum", requires=("body",)),
    type_definition=Def(
        "type",
        name=("*declarator",),
        kind_by=(("type",), {"struct_specifier": "struct", "union_specifier": "struct", "enum_specifier": "enum"}),
    ),
)
# `extern "C" { ... }` wraps whole C headers (for C++ callers): its definitions are
# the header's own.
_C_TRANSPARENT = frozenset(
    {"preproc_ifdef", "preproc_if", "preproc_else", "preproc_elif", "preproc_elifdef",
     "linkage_specification", "declaration_list"}
)

_ELIXIR_CALLS = (
    Def("namespace", name=("@arguments",), clean="first_word", container=True, body=("@do_block",),
        requires=("target",), requires_text=frozenset({"defmodule"})),
    Def("interface", name=("@arguments",), clean="first_word", container=True, body=("@do_block",),
        requires=("target",), requires_text=frozenset({"defprotocol"})),
    Def("impl", name=("@arguments",), clean="first_word", container=True, body=("@do_block",),
        requires=("target",), requires_text=frozenset({"defimpl"})),
    Def("function", name=("@arguments",), clean="first_word",
        requires=("target",), requires_text=frozenset({"def", "defp", "defdelegate", "defguard", "defguardp", "defn", "defnp"})),
    Def("macro", name=("@arguments",), clean="first_word",
        requires=("target",), requires_text=frozenset({"defmacro", "defmacrop"})),
)

_ZIG_CONTAINER = ("@VarDecl", "@ErrorUnionExpr", "@SuffixExpr", "@ContainerDecl")

LANGUAGES: dict[str, LanguageSpec] = {
    spec.name: spec
    for spec in (
        LanguageSpec(
            "python", "python", (".py", ".pyi", ".pyw"),
            definitions=_defs(
                function_definition=Def("function"),
                class_definition=Def("class", container=True),
            ),
            wrappers=frozenset({"decorated_definition"}),
            shebangs=("python", "pypy"),
        ),
        LanguageSpec(
            "javascript", "javascript", (".js", ".mjs", ".cjs", ".jsx"), **_JS,  # type: ignore[arg-type]
            shebangs=("node", "nodejs"),
        ),
        LanguageSpec("typescript", "typescript", (".ts", ".mts", ".cts"), **_JS,  # type: ignore[arg-type]
                     shebangs=("ts-node", "deno", "bun", "tsx")),
        LanguageSpec("tsx", "tsx", (".tsx",), **_JS),  # type: ignore[arg-type]
        LanguageSpec(
            "go", "go", (".go",),
            definitions=_defs(
                function_declaration=Def("function"),
                method_declaration=Def("method", qualifier=("receiver",)),
                type_declaration=Def(
                    "type",
                    name=("@type_spec|type_alias", "name"),
                    kind_by=(("@type_spec|type_alias", "type"), {"struct_type": "struct", "interface_type": "interface"}),
                ),
            ),
        ),
        LanguageSpec(
            "rust", "rust", (".rs",),
            definitions=_defs(
                function_item=Def("function"),
                function_signature_item=Def("function"),
                struct_item=Def("struct"),
                union_item=Def("struct"),
                enum_item=Def("enum"),
                trait_item=Def("trait", container=True),
                impl_item=Def("impl", name=("type",), clean="strip_generics", container=True),
                mod_item=Def("namespace", container=True, requires=("body",)),
                macro_definition=Def("macro"),
                type_item=Def("type"),
            ),
            attached=frozenset({"line_comment", "block_comment", "attribute_item"}),
            separator="::",
        ),
        LanguageSpec(
            "java", "java", (".java",),
            definitions=_defs(
                class_declaration=Def("class", container=True),
                record_declaration=Def("class", container=True),
                interface_declaration=Def("interface", container=True),
                annotation_type_declaration=Def("interface", container=True),
                enum_declaration=Def("enum", container=True),
                method_declaration=Def("method"),
                constructor_declaration=Def("method"),
                compact_constructor_declaration=Def("method"),
            ),
            attached=frozenset({"line_comment", "block_comment"}),
            transparent=frozenset({"enum_body_declarations"}),
        ),
        LanguageSpec(
            "kotlin", "kotlin", (".kt", ".kts"),
            definitions=_defs(
                class_declaration=Def(
                    "class", name=("@type_identifier",), container=True, body=("@class_body|enum_class_body",),
                    kind_by=((), {"interface": "interface", "enum_class_body": "enum"}),
                ),
                object_declaration=Def("class", name=("@type_identifier",), container=True, body=("@class_body",)),
                companion_object=Def(
                    "class", name=("@type_identifier",), name_alt=("=Companion",), container=True, body=("@class_body",)
                ),
                function_declaration=Def("function", name=("@simple_identifier",), body=("@function_body",)),
            ),
            attached=frozenset({"line_comment", "multiline_comment"}),
            shebangs=("kotlin",),
        ),
        LanguageSpec(
            "scala", "scala", (".scala", ".sc"),
            definitions=_defs(
                class_definition=Def("class", container=True),
                object_definition=Def("class", container=True),
                trait_definition=Def("trait", container=True),
                enum_definition=Def("enum", container=True),
                function_definition=Def("function"),
                function_declaration=Def("function"),
            ),
            attached=frozenset({"comment", "block_comment"}),
            shebangs=("scala",),
        ),
        LanguageSpec(
            "c", "c", (".c", ".h"),
            definitions=_C_DEFS,
            transparent=_C_TRANSPARENT,
        ),
        LanguageSpec(
            "cpp", "cpp", (".cc", ".cpp", ".cxx", ".c++", ".hpp", ".hh", ".hxx", ".h++", ".ipp", ".tpp"),
            definitions={
                **_C_DEFS,
                **_defs(
                    # `class EXPORT_MACRO Name {...}` parses as a function whose type is the class
                    function_definition=Def(
                        "function", name=("*declarator",),
                        kind_by=(("type",), {"class_specifier": "class", "struct_specifier": "struct"}),
                    ),
                    class_specifier=Def("class", requires=("body",), container=True),
                    struct_specifier=Def("struct", requires=("body",), container=True),
                    union_specifier=Def("struct", requires=("body",), container=True),
                    namespace_definition=Def("namespace", requires=("body",), container=True),
                ),
            },
            wrappers=frozenset({"template_declaration"}),
            transparent=_C_TRANSPARENT,
            separator="::",
        ),
        LanguageSpec(
            "csharp", "csharp", (".cs",),
            definitions=_defs(
                class_declaration=Def("class", container=True),
                record_declaration=Def("class", container=True),
                struct_declaration=Def("struct", container=True),
                interface_declaration=Def("interface", container=True),
                enum_declaration=Def("enum"),
                # Namespaces do not prefix members: file-scoped namespaces (`namespace A;`)
                # cannot, and both forms should give the same symbols.
                namespace_declaration=Def("namespace", container=True, qualifies=False),
                method_declaration=Def("method"),
                constructor_declaration=Def("method"),
                operator_declaration=Def("method", name=("operator",)),
                delegate_declaration=Def("type"),
            ),
        ),
        LanguageSpec(
            "ruby", "ruby", (".rb", ".rake", ".gemspec", ".ru"),
            definitions=_defs(
                class_=Def("class", container=True),
                module=Def("namespace", container=True),
                method=Def("function"),
                singleton_method=Def("method"),
            ),
            transparent=frozenset({"singleton_class", "body_statement"}),
            shebangs=("ruby",),
            filenames=("Rakefile", "Gemfile", "Guardfile", "Vagrantfile"),
        ),
        LanguageSpec(
            "php", "php", (".php", ".phtml"),
            definitions=_defs(
                class_declaration=Def("class", container=True),
                interface_declaration=Def("interface", container=True),
                trait_declaration=Def("trait", container=True),
                enum_declaration=Def("enum", container=True),
                function_definition=Def("function"),
                method_declaration=Def("method"),
                namespace_definition=Def("namespace", requires=("body",), container=True),
            ),
            shebangs=("php",),
        ),
        LanguageSpec(
            "swift", "swift", (".swift",),
            definitions=_defs(
                class_declaration=Def(
                    "class", clean="strip_generics", container=True,
                    kind_by=((), {"struct": "struct", "enum": "enum", "extension": "impl", "protocol": "interface"}),
                ),
                protocol_declaration=Def("interface", container=True),
                function_declaration=Def("function"),
                protocol_function_declaration=Def("method"),
                init_declaration=Def("method", name=("=init",)),
                deinit_declaration=Def("method", name=("=deinit",)),
                typealias_declaration=Def("type"),
            ),
            attached=frozenset({"comment", "multiline_comment"}),
            shebangs=("swift",),
        ),
        LanguageSpec(
            "lua", "lua", (".lua",),
            definitions=_defs(
                function_declaration=Def("function"),
                # `local f = function() end`
                variable_declaration=Def(
                    "function",
                    name=("@assignment_statement", "@variable_list", "name"),
                    requires=("@assignment_statement", "@expression_list", "value"),
                    requires_types=frozenset({"function_definition"}),
                ),
                # `M.f = function() end`
                assignment_statement=Def(
                    "function",
                    name=("@variable_list", "name"),
                    requires=("@expression_list", "value"),
                    requires_types=frozenset({"function_definition"}),
                ),
            ),
            shebangs=("lua", "luajit"),
        ),
        LanguageSpec(
            "bash", "bash", (".sh", ".bash", ".zsh", ".ksh"),
            definitions=_defs(function_definition=Def("function")),
            shebangs=("bash", "sh", "zsh", "ksh", "dash"),
            filenames=(".bashrc", ".bash_profile", ".profile", ".zshrc"),
        ),
        LanguageSpec(
            "elixir", "elixir", (".ex", ".exs"),
            definitions={"call": _ELIXIR_CALLS},
            # `@doc`, `@spec` and `@impl` lines directly above a def belong to it
            attached=frozenset({"comment", "unary_operator"}),
            detached=("#!", "@moduledoc", "@behaviour", "@derive", "@type ", "@typep ", "@opaque "),
            shebangs=("elixir",),
        ),
        LanguageSpec(
            "haskell", "haskell", (".hs",),
            definitions=_defs(
                function=Def("function"),
                bind=Def("function"),
                data_type=Def("type"),
                newtype=Def("type"),
                type_synomym=Def("type"),
                type_family=Def("type"),
                class_=Def("interface", container=True, body=("declarations",)),
                instance=Def("impl", container=True, body=("declarations",)),
            ),
            # a type signature directly above its equations belongs to the function
            attached=frozenset({"comment", "haddock", "signature", "pragma"}),
            transparent=frozenset({"declarations"}),
            shebangs=("runghc", "runhaskell", "stack"),
        ),
        LanguageSpec(
            "zig", "zig", (".zig",),
            definitions=_defs(
                Decl=(
                    Def("function", name=("@FnProto", "function"), requires=("@FnProto",)),
                    Def(
                        "struct", name=("@VarDecl", "variable_type_function"), requires=_ZIG_CONTAINER,
                        container=True, body=_ZIG_CONTAINER,
                        kind_by=((*_ZIG_CONTAINER, "@ContainerDeclType"), {"enum": "enum", "union": "struct"}),
                    ),
                ),
                TestDecl=Def("function", name=("@STRINGLITERALSINGLE|IDENTIFIER",), clean="unquote"),
            ),
            attached=frozenset({"doc_comment", "line_comment", "container_doc_comment"}),
        ),
        LanguageSpec("markdown", None, (".md", ".markdown", ".mdx"), content_type="docs"),
        LanguageSpec("rst", None, (".rst",), content_type="docs"),
    )
}

# Node types that are Python keywords are spelled with a trailing underscore above.
for _spec in LANGUAGES.values():
    for _key in [k for k in _spec.definitions if k.endswith("_")]:
        _spec.definitions[_key.rstrip("_")] = _spec.definitions.pop(_key)  # type: ignore[attr-defined]

EXTENSIONS: dict[str, str] = {ext: s.name for s in LANGUAGES.values() for ext in s.extensions}
# Plain .txt files (requirements, data dumps, licences) are not indexed: they
# crowd code results and have no structure to chunk.
FILENAMES: dict[str, str] = {n: s.name for s in LANGUAGES.values() for n in s.filenames}
SHEBANGS: dict[str, str] = {i: s.name for s in LANGUAGES.values() for i in s.shebangs}

# Languages with a tree-sitter table (the 20 code languages).
CODE_LANGUAGES: tuple[str, ...] = tuple(n for n, s in LANGUAGES.items() if s.grammar)
DOC_LANGUAGES: tuple[str, ...] = tuple(n for n, s in LANGUAGES.items() if s.content_type == "docs")


def canonical_language(name: str) -> str:
    """A language name as the index stores it, from its name or a file extension
    (`Python`, `py`, `.ts`); ValueError listing the known names otherwise."""
    wanted = name.strip().lower()
    if wanted in LANGUAGES:
        return wanted
    by_extension = EXTENSIONS.get("." + wanted.lstrip("."))
    if by_extension is not None:
        return by_extension
    raise ValueError(f"unknown language {name!r}: choose from {', '.join(sorted(LANGUAGES))}")


def spec_for(language: str | None) -> LanguageSpec | None:
    """The chunking table of a language, or None when it has none (plain text)."""
    return LANGUAGES.get(language) if language else None


def detect_language(path: str, head: str = "") -> str | None:
    """Language name for a path; `head` is the file's first line, for shebangs."""
    p = PurePosixPath(path)
    lang = EXTENSIONS.get(p.suffix.lower()) or FILENAMES.get(p.name)
    if lang is not None:
        return lang
    if head.startswith("#!"):
        words = head[2:].replace("/usr/bin/env", " ").split()
        while words and words[0].startswith("-"):  # `env -S node --flags`
            words = words[1:]
        if words:
            interpreter = PurePosixPath(words[0]).name
            return SHEBANGS.get(interpreter) or SHEBANGS.get(interpreter.rstrip("0123456789.-"))
    return None
