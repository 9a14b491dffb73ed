"""cycletrans: unpaired image-to-image translation (CycleGAN, Zhu et al. 2017) as a command-line tool and library.

The library API lives in its rooms, imported from there so that inference never pulls in torch:
`cycletrans.nets` (networks), `cycletrans.train` (training), `cycletrans.export` (PyTorch → ONNX),
`cycletrans.engine` (onnxruntime inference on frames), `cycletrans.media` (images, video, cameras),
`cycletrans.styles` (named models).
"""

__version__ = "0.1.0"
