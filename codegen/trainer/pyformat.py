"""Python statements laid out as ``ruff format --line-length 100`` lays them out, without ruff.

The printers write expressions as sympy does (``w1*i1 + w2*i2 + b1``); a trainer's lines are
formatted code (``w1 * i1 + w2 * i2 + b1``, wrapped where a line would pass 100 columns), the way
ruff writes it, so that the emitted file is what ``ruff format`` leaves as it is (the golden test
runs ruff on every emitted file; chainrule itself never runs it). :func:`format_statement` parses
one statement and builds the document ruff's formatter builds for it
(crates/ruff_python_formatter: binary chains split before their lowest-precedence operators,
call arguments in a group inside the parentheses' group, optional parentheses around a
statement's value where it has to break, ...), and :mod:`~chainrule.codegen.trainer.layout`
prints it.

What the printers and the trainer write is covered: names, numbers, strings, attributes, calls,
subscripts and slices, unary, binary, comparison, boolean and conditional expressions, tuples,
lists and dicts; assignments, augmented assignments, ``return`` and expression statements.
Anything else raises :class:`ValueError`.
"""

from __future__ import annotations

import ast

from chainrule.codegen.trainer.layout import (
    HARD, SOFT, SOFT_OR_SPACE, BestFitting, ConditionalGroup, Doc, FitsExpanded, Group, IfBreaks, IfFits,
    Indent, IndentIfGroupBreaks, print_document, soft_block_indent,
)
from chainrule.codegen.trainer.pysyntax import (
    BINARY, BOOLEAN, COMPARATOR, COMPARE, PRECEDENCE, UNARY, Source, inlined, number, own_parentheses, simple_power,
    simple_slice_part,
)

#: Where an expression is formatted (ruff's NodeLevel): a statement's own level, inside an
#: expression, or inside parentheses; an ``int`` is inside the optional parentheses of that group.
TOP, EXPRESSION, PARENTHESIZED = "top", "expression", "parenthesized"
PRESERVE, ALWAYS, NEVER = "preserve", "always", "never"
#: What a statement's value needs (ruff's OptionalParentheses).
MULTILINE, BEST_FIT = "multiline", "best fit"


def format_statement(code: str, indent: int = 0, line_width: int = 100) -> str:
    """``code``, one statement on one line, laid out as ruff would at ``indent`` levels of four
    spaces: the first line without its indentation (the template writes it), the others with.

    Raises:
        ValueError: ``code`` is not one statement of the kinds this module lays out.
    """
    statement = _Builder(code).statement()
    return print_document(statement, indent, line_width)


class _Builder(Source):
    """The document of one statement, built as ruff's formatter builds it."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.ids = 0

    def new_id(self) -> int:
        self.ids += 1
        return self.ids

    # -- statements -------------------------------------------------------------------------

    def statement(self) -> Doc:
        node = self.node
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            return self.assignment(node.targets[0], "=", node.value)
        if isinstance(node, ast.AugAssign):
            return self.assignment(node.target, BINARY[type(node.op)] + "=", node.value)
        if isinstance(node, ast.Return):
            if node.value is None:
                return "return"
            return ("return ", self.last_expression(node.value))
        if isinstance(node, ast.Expr):
            return self.maybe_parenthesize(node.value, optional=True)
        raise ValueError(f"not a statement this formatter lays out: {self.code!r:.80}")

    def assignment(self, target: ast.expr, operator: str, value: ast.expr) -> Doc:
        if not own_parentheses(target) and not isinstance(target, ast.Tuple):
            return (self.expression(target, TOP), f" {operator} ", self.last_expression(value))
        if isinstance(target, ast.Tuple) and not self.tuple_parenthesized(target):
            left = self.parenthesize_if_expands(target)
        else:
            left = self.expression(target, TOP, NEVER)
        if not inlined(value) and not (isinstance(value, (ast.Call, ast.Attribute, ast.Subscript))
                                        and self.needs_parentheses(value) == BEST_FIT):
            return (left, f" {operator} ", self.maybe_parenthesize(value))
        right = self.expression(value, TOP, NEVER)
        flat = (left, f" {operator} ", right)
        parenthesized = (left, f" {operator} (", Indent((HARD, right)), HARD, ")")
        if isinstance(value, (ast.Call, ast.Attribute, ast.Subscript)):
            split = (left, f" {operator} ", Group(right, expand=True))
            return BestFitting((flat, split, parenthesized, flat), all_lines=True)
        return BestFitting((flat, parenthesized, flat), all_lines=True)

    def last_expression(self, value: ast.expr) -> Doc:
        """A statement's value after ``=`` or ``return``: parenthesized where it has to break."""
        return self.maybe_parenthesize(value)

    def maybe_parenthesize(self, value: ast.expr, optional: bool = False) -> Doc:
        if optional and self.parenthesized(value):
            return self.expression(value, TOP, ALWAYS)
        needs = self.needs_parentheses(value)
        if needs == MULTILINE:
            if self.can_omit_parentheses(value):
                return self.optional_parentheses(value)
            return self.parenthesize_if_expands(value)
        if needs == BEST_FIT and not optional:
            return self.best_fit_parenthesize(value)
        return self.expression(value, TOP, NEVER)

    def optional_parentheses(self, value: ast.expr) -> Doc:
        """No parentheses where the value fits with its own brackets broken, else parentheses."""
        group = self.new_id()
        content = self.expression(value, group, NEVER)
        return Group((IfBreaks("("), IndentIfGroupBreaks((SOFT, content), group), SOFT, IfBreaks(")")), id=group)

    def parenthesize_if_expands(self, value: ast.expr) -> Doc:
        content = self.expression(value, PARENTHESIZED, NEVER)
        return Group((IfBreaks("("), soft_block_indent(content), IfBreaks(")")))

    def best_fit_parenthesize(self, value: ast.expr) -> Doc:
        """A value without split points of its own, parenthesized only where that makes it fit."""
        content = self.expression(value, EXPRESSION, NEVER)
        return BestFitting((content, ("(", Indent((HARD, content)), HARD, ")"), content), all_lines=True)

    def needs_parentheses(self, value: ast.expr) -> str:
        if isinstance(value, (ast.BinOp, ast.Compare, ast.BoolOp, ast.IfExp)):
            return MULTILINE
        if isinstance(value, ast.Tuple):
            return NEVER if self.tuple_parenthesized(value) else MULTILINE
        if isinstance(value, ast.UnaryOp):
            if self.parenthesized(value.operand):
                return NEVER
            return self.needs_parentheses(value.operand)
        if isinstance(value, (ast.List, ast.Dict)):
            return NEVER
        if isinstance(value, ast.Call):
            return NEVER if self.parenthesized(value.func) else self.needs_parentheses(value.func)
        if isinstance(value, (ast.Attribute, ast.Subscript)):
            return NEVER if self.parenthesized(value.value) else self.needs_parentheses(value.value)
        if isinstance(value, (ast.Name, ast.Constant)):
            return BEST_FIT if 5 < len(self.text(value)) <= 96 else NEVER
        raise ValueError(f"not an expression this formatter lays out: {ast.dump(value)[:80]}")

    # -- expressions ------------------------------------------------------------------------

    def expression(self, node: ast.expr, level: str | int, parentheses: str = PRESERVE) -> Doc:
        if parentheses == ALWAYS or (parentheses == PRESERVE and self.parenthesized(node)):
            return self.bracketed("(", lambda inner: self.fields(node, inner), ")", level)
        return self.fields(node, EXPRESSION if level == TOP else level)

    def bracketed(self, left: str, content, right: str, level: str | int) -> Doc:
        """``left content right`` as a group that breaks inside the brackets."""
        inner = Group((left, soft_block_indent(content(PARENTHESIZED)), right))
        return FitsExpanded(inner, level) if isinstance(level, int) else inner

    def fields(self, node: ast.expr, level: str | int) -> Doc:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Attribute):
            return (self.expression(node.value, level), ".", node.attr)
        if isinstance(node, ast.Call):
            return (self.expression(node.func, level), self.arguments(node, level))
        if isinstance(node, ast.Subscript):
            return (self.expression(node.value, level), self.subscript(node.slice, level))
        if isinstance(node, ast.UnaryOp):
            return (UNARY[type(node.op)], self.expression(node.operand, level))
        if isinstance(node, (ast.BinOp, ast.Compare, ast.BoolOp)):
            return self.binary(node, level)
        if isinstance(node, ast.IfExp):
            return self.conditional(node, level)
        if isinstance(node, ast.Tuple):
            if self.tuple_parenthesized(node):
                return self.bracketed("(", lambda inner: self.items(node.elts, inner, tuple_=True), ")", level)
            return self.items(node.elts, level, tuple_=True)  # the statement's group breaks it
        if isinstance(node, ast.List):
            if not node.elts:
                return "[]"
            return self.bracketed("[", lambda inner: self.items(node.elts, inner), "]", level)
        if isinstance(node, ast.Dict):
            if not node.keys:
                return "{}"
            return self.bracketed("{", lambda inner: self.entries(node, inner), "}", level)
        if isinstance(node, (ast.JoinedStr, ast.GeneratorExp, ast.ListComp)):
            return self.text(node)  # as written, never broken: only short ones are printed
        if isinstance(node, ast.Starred):
            return ("*", self.expression(node.value, level))
        raise ValueError(f"not an expression this formatter lays out: {ast.dump(node)[:80]}")

    def constant(self, node: ast.Constant) -> str:
        text = self.text(node)
        if isinstance(node.value, (int, float, complex)) and not isinstance(node.value, bool):
            return number(text)
        return text

    def items(self, elements: list[ast.expr], level: str | int, tuple_: bool = False) -> Doc:
        parts: list[Doc] = []
        for i, element in enumerate(elements):
            if i:
                parts += [",", SOFT_OR_SPACE]
            parts.append(self.expression(element, level))
        parts.append("," if tuple_ and len(elements) == 1 else IfBreaks(","))
        return tuple(parts)

    def entries(self, node: ast.Dict, level: str | int) -> Doc:
        parts: list[Doc] = []
        for i, (key, value) in enumerate(zip(node.keys, node.values)):
            if i:
                parts += [",", SOFT_OR_SPACE]
            if key is None:
                parts.append(("**", self.expression(value, level)))
            else:
                parts.append((self.expression(key, level), ": ", self.expression(value, level)))
        parts.append(IfBreaks(","))
        return tuple(parts)

    def arguments(self, call: ast.Call, level: str | int) -> Doc:
        """``(a, b, key=c)``: the parentheses' group and, inside, one for all the arguments (on
        their own line, else one a line)."""
        arguments = sorted([*call.args, *call.keywords], key=lambda node: (node.lineno, node.col_offset))
        if not arguments:
            return "()"
        if len(arguments) == 1 and isinstance(arguments[0], ast.GeneratorExp) and self.text(arguments[0]).startswith("("):
            return self.text(arguments[0])  # f(x for x in y): the call's parentheses are the generator's

        def content(inner: str | int) -> Doc:
            parts: list[Doc] = []
            for i, argument in enumerate(arguments):
                if i:
                    parts += [",", SOFT_OR_SPACE]
                parts.append(self.argument(argument, inner, single=len(arguments) == 1))
            return Group((*parts, IfBreaks(",")))

        return self.bracketed("(", content, ")", level)

    def argument(self, node: ast.AST, level: str | int, single: bool) -> Doc:
        if isinstance(node, ast.keyword):
            value = self.expression(node.value, level)
            return ("**", value) if node.arg is None else (f"{node.arg}=", value)
        if single and not self._doubly_parenthesized(node):
            return self.expression(node, level, NEVER)
        return self.expression(node, level)

    def _doubly_parenthesized(self, node: ast.expr) -> bool:
        start, end = self.span(node)
        before, after = self.code[:start].rstrip(), self.code[end:].lstrip()
        return before.endswith("((") or (before.endswith("(") and before[:-1].rstrip().endswith("(")) and after.startswith("))")

    def subscript(self, index: ast.expr, level: str | int) -> Doc:
        def content(inner: str | int) -> Doc:
            if isinstance(index, ast.Tuple) and not self.tuple_parenthesized(index):
                parts: list[Doc] = []
                for i, element in enumerate(index.elts):
                    if i:
                        parts += [",", SOFT_OR_SPACE]
                    parts.append(self.slice(element, inner))
                return (*parts, "," if len(index.elts) == 1 else IfBreaks(","))
            return self.slice(index, inner)

        return self.bracketed("[", content, "]", level)

    def slice(self, node: ast.expr, level: str | int) -> Doc:
        if not isinstance(node, ast.Slice):
            return self.expression(node, level)
        parts = [node.lower, node.upper] + ([node.step] if node.step is not None else [])
        simple = all(part is None or simple_slice_part(part) for part in parts)
        out: list[Doc] = []
        for i, part in enumerate(parts):
            if i:
                spaced_before = not simple and parts[i - 1] is not None
                spaced_after = not simple and part is not None
                out.append((" " if spaced_before else "") + ":" + (" " if spaced_after else ""))
            if part is not None:
                out.append(self.expression(part, level))
        return tuple(out)

    def conditional(self, node: ast.IfExp, level: str | int) -> Doc:
        parts = (self.expression(node.body, level), self.break_or_space(level), "if ", self.expression(node.test, level),
                 self.break_or_space(level), "else ", self.expression(node.orelse, level))
        return self.group_in_parentheses(parts, level)

    # -- binary chains (ruff's binary_like.rs) ----------------------------------------------

    def binary(self, node: ast.expr, level: str | int) -> Doc:
        parts: list = []
        self.flatten(node, parts)
        return self.group_in_parentheses(self.chain(parts, level), level)

    def flatten(self, node: ast.expr, parts: list, root: bool = True) -> None:
        """Operands and operators in source order, through unparenthesized sub-chains."""
        nested = root or not self.parenthesized(node)
        if isinstance(node, ast.BinOp) and nested:
            self.flatten(node.left, parts, False)
            parts.append((BINARY[type(node.op)], PRECEDENCE[type(node.op)]))
            self.flatten(node.right, parts, False)
        elif isinstance(node, ast.Compare) and nested:
            self.flatten(node.left, parts, False)
            for op, comparator in zip(node.ops, node.comparators):
                parts.append((COMPARE[type(op)], COMPARATOR))
                self.flatten(comparator, parts, False)
        elif isinstance(node, ast.BoolOp) and nested:
            for i, value in enumerate(node.values):
                if i:
                    parts.append(("and" if isinstance(node.op, ast.And) else "or", BOOLEAN))
                self.flatten(value, parts, False)
        else:
            parts.append(node)

    def chain(self, parts: list, level: str | int) -> Doc:
        """A flat chain split before its loosest operators, each side a group of its own."""
        if len(parts) == 1:
            return self.operand(parts[0], level)
        loosest = max(precedence for _, precedence in parts[1::2])
        out: list[Doc] = []
        start = 0
        for index in range(1, len(parts), 2):
            symbol, precedence = parts[index]
            if precedence != loosest:
                continue
            left, right = parts[start:index], parts[index + 1:]
            out.append(self.operand(left[0], level) if len(left) == 1 else self.group_in_parentheses(self.chain(left, level), level))
            power = symbol == "**" and simple_power(left[-1], self) and simple_power(right[0], self)
            out += [self.break_(level) if power else self.break_or_space(level), symbol]
            out.append(self.space_if_breaks(level) if power else " ")
            start = index + 1
        right = parts[start:]
        out.append(self.operand(right[0], level) if len(right) == 1 else self.group_in_parentheses(self.chain(right, level), level))
        return tuple(out)

    def operand(self, node: ast.expr, level: str | int) -> Doc:
        return self.expression(node, level, ALWAYS if self.parenthesized(node) else NEVER)

    # -- ruff's in_parentheses_only_* --------------------------------------------------------

    def group_in_parentheses(self, content: Doc, level: str | int) -> Doc:
        if isinstance(level, int):
            return ConditionalGroup(content, level)
        return Group(content) if level == PARENTHESIZED else content

    def break_or_space(self, level: str | int) -> Doc:
        if isinstance(level, int):
            return (IfBreaks(SOFT_OR_SPACE, level), IfFits(" ", level))
        return SOFT_OR_SPACE if level == PARENTHESIZED else " "

    def space_if_breaks(self, level: str | int) -> Doc:
        if isinstance(level, int):
            return IfBreaks(" ", level)
        return IfBreaks(" ") if level == PARENTHESIZED else ""

    def break_(self, level: str | int) -> Doc:
        if isinstance(level, int):
            return IfBreaks(SOFT, level)
        return SOFT if level == PARENTHESIZED else ""


