"""EMR-HRNet kit: landslide segmentation models, data, training and evaluation."""

__version__ = "0.2.0"
