"""Multi-replica training on one CPU: split it into logical devices, mirror over them."""

from __future__ import annotations

__all__ = ["mirrored_cpu_strategy", "split_cpu"]


def split_cpu(n: int = 2) -> None:
    """Splits the first CPU into ``n`` logical devices. Must run before TensorFlow initialises
    its devices (before the first op); a no-op when the split is already in place."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == n:
        return
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)


def mirrored_cpu_strategy(n: int = 2):
    """The process's ``MirroredStrategy`` over ``n`` logical CPUs (see :func:`split_cpu`).

    One instance per process and device set (``tfstream.train.distribute.mirrored``): several
    MirroredStrategy objects over the same devices share TensorFlow's collective executor and
    can reuse each other's collective keys with other shapes, which aborts every later
    collective op of the process."""
    import tensorflow as tf

    from tfstream.train.distribute import mirrored

    split_cpu(n)
    devices = [d.name for d in tf.config.list_logical_devices("CPU")][:n]
    if len(devices) < n:
        raise RuntimeError(
            f"Only {len(devices)} logical CPU(s): TensorFlow initialised its devices before "
            f"split_cpu({n}) ran. Call it first thing in the process."
        )
    return mirrored(devices)
