"""Continuum: a Kubernetes operator for continuous training of scikit-learn models."""

__version__ = "0.1.0"
__all__ = ["__version__"]
