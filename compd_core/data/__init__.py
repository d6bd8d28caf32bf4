"""Datasets as float image batches in [0, 1] with labels and provenance."""

from compd_core.data.dataset import ImageDataset, from_uint8
from compd_core.data.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist
from compd_core.data.files import load_image_folder, load_npz, read_image
from compd_core.data.mnist import MNIST_CLASSES, load_mnist

__all__ = [
    "FASHION_MNIST_CLASSES",
    "ImageDataset",
    "MNIST_CLASSES",
    "from_uint8",
    "load_fashion_mnist",
    "load_image_folder",
    "load_mnist",
    "load_npz",
    "read_image",
]
