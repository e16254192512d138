"""SongBloom: whole songs from lyrics and a 10 s style prompt (sketch LM + DiT), with Japanese lyrics."""
