"""Meta-learning and distributed helpers below the methods: Reptile's update and the torchrun
collectives that both the training loop and MetalGAN's inner loop use."""
