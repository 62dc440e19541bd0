"""Pretrained networks from elsewhere, ported to Flax: features learned from far more real
music than jaxeq's own sources hold (`musicnn`: Pons & Serra's taggers, trained on the Million
Song Dataset and MagnaTagATune). Their weights ship in `jaxeq/assets/backbones/`, as plain
arrays, with the licence and the command that converted them."""
