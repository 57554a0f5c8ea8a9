"""KITTI raw: calibration, velodyne ground truth and split files, in numpy (no torch)."""
