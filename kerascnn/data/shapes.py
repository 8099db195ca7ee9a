"""Model input shapes in the words `kerascnn.data.load` takes them."""


def image_args(shape):
    """`(image_size, channels)` for `data.load` from an `(H, W, C)` shape;
    `(None, None)` for any other shape (text, or the data set's own)."""
    if shape and len(shape) == 3:
        return tuple(shape[:2]), shape[2]
    return None, None
