import sys
from pathlib import Path

# nats_fixture and synthetic_table, shared with the table and search tests
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "table"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "search"))
