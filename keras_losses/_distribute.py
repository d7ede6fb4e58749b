"""Cross-replica reductions: the one TensorFlow-specific place for tf.distribute.

Statistics over a batch (ECE bins, class moments, batch sums) must be taken
over the *global* batch. Under a strategy, all-reduce sums and counts (never
means); gradients flow through the all-reduce. With no strategy, in a
cross-replica context and on other backends this is the identity.
"""

import keras
from keras import ops


def cross_replica_sum(values):
    """Sums each tensor (or sum-aggregated variable) of ``values`` over all replicas.

    Args:
        values: list of tensors or variables.

    Returns:
        List of tensors, each summed over the replicas in sync.
    """
    values = [ops.convert_to_tensor(v) for v in values]
    if keras.backend.backend() != "tensorflow":
        return values
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return values
    return context.all_reduce("SUM", values)


def num_replicas():
    """Replicas in sync under the current ``tf.distribute`` strategy; 1 without one or off TensorFlow."""
    if keras.backend.backend() != "tensorflow":
        return 1
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def divide_by_replicas(value):
    """``value / replicas``: a global-batch term added once per replica, as Keras divides mean losses.

    Keras divides each replica's mean loss by the number of replicas and sums the replicas'
    gradients; a term that every replica computes for the whole global batch must be divided the
    same way to be counted once.
    """
    replicas = num_replicas()
    return value if replicas == 1 else value / float(replicas)
