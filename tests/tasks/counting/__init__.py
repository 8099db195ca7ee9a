"""A third task that exists only in the test suite: counting bright squares.

It is laid out as a task package of `kerascnn/tasks/` is, and nothing in
kerascnn knows it:

    data.py      the generated images and the task's score
    task.py      `Counting`, the `Task`: its data, loss, "min" checkpoint
                 monitor, evaluation, and export (SavedModel signature
                 `images` -> `count`, `rounded`; ONNX output `count`;
                 verification examples and rounded-count accuracy)
    model.py     `square_counter`, registered with `register_model`
    __main__.py  the one registry line (`tasks.register_task(Counting())`)
                 and the entry points below

Run as a script (a fresh process, so the registrations do not leak into
other tests):

    python -m tests.tasks.counting fit RUN_DIR       # prints JSON
    python -m tests.tasks.counting kerascnn ARGS...  # the CLI, with the
                                                     # task registered

Importing this package (or `data`) registers nothing.
"""
