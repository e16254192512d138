"""The embedded mini corpus: speech, a cappella songs and accompaniment, made offline."""
