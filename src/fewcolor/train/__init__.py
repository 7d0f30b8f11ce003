"""The one training loop and Reptile."""
