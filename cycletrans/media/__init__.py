"""Reading and writing media: images (here), videos and cameras. Frames leave this room as uint8 H×W×3 RGB."""
