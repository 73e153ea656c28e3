import pytest

from nb360 import cards
from nb360.data.task import Task
from nb360.train import LR


@pytest.mark.parametrize("name, lr", [("cosmic", 0.001), ("psicov", 0.001), ("darcyflow", LR), ("cifar100", LR)])
def test_a_task_trains_at_its_cards_learning_rate_else_nb201s(name, lr):
    assert Task.from_card(cards.load("tasks", name), None, None, None).lr == lr
