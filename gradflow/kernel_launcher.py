"""Start the IPython kernel that runs a report notebook, its stderr going to a log file.

jupyter_client interrupts every kernel before shutting it down, and ipykernel logs that as
"ERROR | KeyboardInterrupt caught in kernel": harmless, but alarming among `make report`'s
lines. The kernel's own stderr goes to ``$GRADFLOW_KERNEL_LOG`` (beside the executed notebook)
instead; cell output, errors included, stays in the notebook as always.
"""
import os


def main() -> None:
    log = os.environ.get("GRADFLOW_KERNEL_LOG")
    if log:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 2)  # the file descriptor, so C libraries' messages follow Python's
        os.close(fd)
    from ipykernel import kernelapp
    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()
