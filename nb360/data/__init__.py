"""Task data: one module per file family, the Darcy Flow generator, the task assembly."""

from nb360.data.task import Task, load_task, resolve_data_root, task_status

__all__ = ["Task", "load_task", "resolve_data_root", "task_status"]
