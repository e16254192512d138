"""SongGeneration (LeVo): a LeLM-compatible song language model."""
