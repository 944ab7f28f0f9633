"""What ruff's formatter reads off a statement's syntax before it lays it out: where the source
has parentheses of its own, operator precedence, which operands are simple, and whether a value
may go without optional parentheses (ruff's ``can_omit_optional_parentheses``).
:mod:`~chainrule.codegen.trainer.pyformat` builds the layout on it.
"""

from __future__ import annotations

import ast
import io
import tokenize

BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**",
          ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|", ast.BitXor: "^", ast.BitAnd: "&"}
COMPARE = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Is: "is",
           ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}
UNARY = {ast.UAdd: "+", ast.USub: "-", ast.Invert: "~", ast.Not: "not "}
#: ruff's OperatorPrecedence, loosest last: a chain splits before its loosest operators first.
ATTRIBUTE, POWER, COMPARATOR, BOOLEAN, CONDITIONAL = 1, 2, 10, 12, 13
PRECEDENCE = {ast.Pow: POWER, ast.Mult: 4, ast.Div: 4, ast.FloorDiv: 4, ast.Mod: 4, ast.MatMult: 4, ast.Add: 5,
              ast.Sub: 5, ast.LShift: 6, ast.RShift: 6, ast.BitAnd: 7, ast.BitXor: 8, ast.BitOr: 9}


class Source:
    """One statement on one line, parsed, with the positions of its parentheses."""

    def __init__(self, code: str) -> None:
        if "\n" in code.strip():
            raise ValueError(f"one statement on one line expected: {code!r:.80}")
        self.code = code.strip()
        module = ast.parse(self.code)
        if len(module.body) != 1:
            raise ValueError(f"one statement expected: {code!r:.80}")
        self.node = module.body[0]
        self.offsets = _char_offsets(self.code)
        self.closing = _matching_parentheses(self.code)
        self.own = {self.closing_open(node) for node in ast.walk(self.node) if isinstance(node, ast.Call)}
        # ruff writes -x**2 as -(x**2); reading that back, it takes the operand as parenthesized
        self.forced = {id(node.operand) for node in ast.walk(self.node)
                       if isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.BinOp)}


    def span(self, node: ast.AST) -> tuple[int, int]:
        return self.offsets[node.col_offset], self.offsets[node.end_col_offset]

    def text(self, node: ast.AST) -> str:
        start, end = self.span(node)
        return self.code[start:end]

    def closing_open(self, call: ast.Call) -> int:
        """The position of the ``(`` that opens a call's arguments."""
        end = self.span(call)[1] - 1
        return next(start for start, stop in self.closing.items() if stop == end)

    def parenthesized(self, node: ast.AST) -> bool:
        """Whether ``node`` stands in parentheses of its own in the source (not a call's)."""
        if id(node) in self.forced:
            return True
        start, end = self.span(node)
        before = self.code[:start].rstrip()
        after = self.code[end:].lstrip()
        if not before.endswith("(") or not after.startswith(")"):
            return False
        opening = len(before) - 1
        return opening not in self.own and self.closing.get(opening) == len(self.code) - len(after)

    def tuple_parenthesized(self, node: ast.Tuple) -> bool:
        start, end = self.span(node)
        return self.code[start] == "(" and self.closing.get(start) == end - 1

    def can_omit_parentheses(self, value: ast.expr) -> bool:
        """ruff's can_omit_optional_parentheses: one loosest operator, and the value ends (or
        starts) in brackets that can break instead."""
        visitor = OmitVisitor(self)
        visitor.subexpression(value)
        if not visitor.any_parenthesized:
            return False
        if visitor.count > 1:
            return False
        if visitor.precedence in (0, ATTRIBUTE):
            return True
        return any(node is not None and self.has_brackets(node) for node in (visitor.last, visitor.first))

    def has_brackets(self, node: ast.expr) -> bool:
        """Non-empty brackets of its own (a call's, a list's, ...) or parentheses in the source;
        subscripts excluded (breaking them looks odd)."""
        if isinstance(node, ast.Subscript):
            return False
        if isinstance(node, ast.Call):
            return bool(node.args or node.keywords) or self.parenthesized(node)
        if isinstance(node, (ast.List, ast.Dict)):
            return bool(node.elts if isinstance(node, ast.List) else node.keys) or self.parenthesized(node)
        if isinstance(node, ast.Tuple) and self.tuple_parenthesized(node):
            return bool(node.elts)
        return self.parenthesized(node)


class OmitVisitor:
    """ruff's CanOmitOptionalParenthesesVisitor: the loosest operator and how often it occurs,
    whether any part has brackets, and the first and last part."""

    def __init__(self, builder: Source) -> None:
        self.builder = builder
        self.precedence, self.count = 0, 0
        self.any_parenthesized = False
        self.first: ast.expr | None = None
        self.first_set = False
        self.last: ast.expr | None = None

    def update(self, precedence: int, count: int = 1) -> None:
        if precedence > self.precedence:
            self.precedence, self.count = precedence, count
        elif precedence == self.precedence:
            self.count += count

    def set_first(self, node: ast.expr | None) -> None:
        if not self.first_set:
            self.first, self.first_set = node, True

    def visit(self, node: ast.expr) -> None:
        self.last = node
        if self.builder.parenthesized(node):
            self.any_parenthesized = True
        else:
            self.subexpression(node)
        self.set_first(node)

    def subexpression(self, node: ast.expr) -> None:
        if isinstance(node, (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.SetComp, ast.DictComp)):
            self.any_parenthesized = True
            return
        if isinstance(node, ast.Tuple) and self.builder.tuple_parenthesized(node):
            self.any_parenthesized = True
            return
        if isinstance(node, ast.BoolOp):
            self.update(BOOLEAN, len(node.values) - 1)
        elif isinstance(node, ast.BinOp):
            self.update(PRECEDENCE[type(node.op)])
        elif isinstance(node, ast.IfExp):
            self.update(CONDITIONAL, 2)
        elif isinstance(node, ast.Compare):
            self.update(COMPARATOR, len(node.ops))
        elif isinstance(node, ast.Call):
            self.any_parenthesized = True
            self.visit(node.func)
            self.last = node
            return
        elif isinstance(node, ast.Subscript):
            self.any_parenthesized = True
            self.visit(node.value)
            self.last = node
            return
        elif isinstance(node, ast.Attribute):
            self.visit(node.value)
            if self.builder.has_brackets(node.value) or isinstance(node.value, ast.Subscript):
                self.update(ATTRIBUTE)
            self.last = node
            return
        elif isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Invert):
                self.update(3)
            self.set_first(None)
        elif isinstance(node, ast.Starred):
            self.set_first(None)
        elif isinstance(node, (ast.Constant, ast.Name, ast.Slice)):
            return
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.visit(child)


def own_parentheses(node: ast.expr) -> bool:
    """Targets that bring brackets of their own (ruff's has_own_parentheses, for targets)."""
    return isinstance(node, (ast.Subscript, ast.List, ast.Dict)) or (isinstance(node, ast.Call) and bool(node.args or node.keywords))


def inlined(value: ast.expr) -> bool:
    """Values without split points (ruff's should_inline_comments)."""
    return isinstance(value, ast.Name) or (isinstance(value, ast.Constant) and not isinstance(value.value, str))


def simple_power(node: ast.expr, builder: Source) -> bool:
    """Black's simple power operand: a name, a number, an attribute chain of names, with unary
    operators, not in parentheses."""
    if builder.parenthesized(node):
        return False
    if isinstance(node, ast.UnaryOp):
        return not isinstance(node.op, ast.Not) and simple_power(node.operand, builder)
    if isinstance(node, ast.Attribute):
        return simple_power(node.value, builder)
    return isinstance(node, ast.Name) or (isinstance(node, ast.Constant) and not isinstance(node.value, (str, bytes)))


def simple_slice_part(node: ast.expr) -> bool:
    """A slice bound after which ``:`` takes no spaces: a name or a number, maybe negated."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.operand, (ast.Name, ast.Constant)):
        return True
    return isinstance(node, ast.Name) or (isinstance(node, ast.Constant) and not isinstance(node.value, str))


def number(text: str) -> str:
    """ruff's number normalization: lowercase prefixes, exponents and suffixes, uppercase hex digits."""
    lower = text.lower()
    if lower.startswith("0x"):
        return "0x" + text[2:].upper()
    return lower


def _char_offsets(code: str) -> dict[int, int]:
    """UTF-8 byte offsets (what ``ast`` reports) to character offsets in ``code``."""
    offsets, position = {}, 0
    for index, char in enumerate(code):
        offsets[position] = index
        position += len(char.encode("utf-8"))
    offsets[position] = len(code)
    return offsets


def _matching_parentheses(code: str) -> dict[int, int]:
    """The position of each ``(`` to that of its ``)``, from the tokens (strings skipped)."""
    closing, stack = {}, []
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        if token.type == tokenize.OP and token.string in "([{":
            stack.append(token.start[1])
        elif token.type == tokenize.OP and token.string in ")]}":
            closing[stack.pop()] = token.start[1]
    return closing

