"""SeedSVC: singing voice conversion on the Seed-VC V2 CFM decoder with frame-level F0.

``seedsvc.models`` holds the V2 CFM + DiT estimator and length regulator (loading
upstream's ``{'net': {'cfm', 'length_regulator'}}`` checkpoints), the V1 F0
quantiser and embedding, and the per-layer F0 cross-attention.
"""
