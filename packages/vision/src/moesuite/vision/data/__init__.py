"""Vision data: the MNIST idx files, scikit-learn's digits, and image folders.

Examples:
    >>> from moesuite.vision.data.digits import load_digits_images
    >>> images, labels = load_digits_images()
    >>> images.shape, images.dtype.name, int(labels.max())
    ((1797, 8, 8), 'float32', 9)
"""
