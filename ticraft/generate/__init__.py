"""Generation: sampling with library concepts (``sample``), img2img/inpainting (``edit``) and the PNG
parameters every image carries (``pngmeta``)."""
