import subprocess
import sys


def test_detection_and_selection_import_without_torch():
    code = ("import sys, nb360.w2s, nb360.w2s.detect, nb360.w2s.select, nb360.w2s.gap, nb360.w2s.synthetic; "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_public_names():
    import nb360.w2s as w2s

    assert callable(w2s.run_w2s) and callable(w2s.detect_overlap) and callable(w2s.select_sources)
    assert callable(w2s.pgr) and callable(w2s.search_student) and callable(w2s.run_sources)
    assert {"Net", "Report", "Detection"} <= set(dir(w2s))
