"""Issue 13: the code stays in the shape we want — short dl_core functions (or a reason beside a long one),
pages without Streamlit-free logic at module level, dl_core without Streamlit."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 60
REASON = "# long:"  # on the line above the def: why this function is better whole


def _functions(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def test_dl_core_functions_are_short_or_say_why():
    long = []
    for path in sorted(ROOT.glob("dl_core/**/*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for fn in _functions(path):
            first = min([fn.lineno] + [d.lineno for d in fn.decorator_list])
            size = fn.end_lineno - fn.lineno + 1
            if size > MAX_LINES and REASON not in lines[first - 2]:
                long.append(f"{path.relative_to(ROOT)}:{fn.lineno} {fn.name} ({size} lines)")
    assert not long, long


def test_dl_core_never_imports_streamlit():
    for path in ROOT.glob("dl_core/**/*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] == "streamlit" for n in names), path


def test_pages_are_section_functions():
    """Module level of a page: imports, constants, function definitions and the calls that run them."""
    for path in sorted(ROOT.glob("app_pages/*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            ok = isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.Assign, ast.AnnAssign)) or (
                isinstance(node, ast.Expr) and isinstance(node.value, (ast.Constant, ast.Call)))
            assert ok, f"{path.name}:{node.lineno}: {ast.dump(node)[:80]}"
            assert not isinstance(node, ast.ClassDef), path
