"""Inference helpers of the ZipVoice package."""
