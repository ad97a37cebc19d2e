"""The architecture as the tree shows it (DESIGN.md, "Layers"): `lint-imports` checks that each
package imports only the layers below it; here, that no module imports itself through others
(a circle inside a layer, which the layers contract cannot see), in the registry and the CLI."""
import grimp
import pytest


@pytest.mark.parametrize("package", ["chalicelib", "dockless"])
def test_no_module_imports_itself_through_others(package):
    graph = grimp.build_graph(package)
    circles = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back:
                circles.append((module, *back))
    assert circles == []


def test_the_layers_contract_holds():
    """What `make test` runs before pytest, here too, so that a run of pytest alone sees it."""
    import subprocess
    import sys
    from pathlib import Path
    lint = Path(sys.executable).with_name("lint-imports")
    answer = subprocess.run([str(lint), "--no-cache"], capture_output=True, text=True,
                            cwd=Path(__file__).parents[2])
    assert answer.returncode == 0, answer.stdout[-3000:]
    assert "broken" in answer.stdout and "0 broken" in answer.stdout
