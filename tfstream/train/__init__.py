"""Training engine: exact gradient accumulation (the macro-step), precision policies,
``tf.distribute`` strategies, activation checkpointing, and the Trainer loop.

Importing this package imports TensorFlow and Keras.
"""

__all__: list[str] = []
