"""The contract between the engine and the implementations it judges: plain facts and types, importing only
`reference`. Adapters build on it, the engine reads it; neither is imported from here (docs/design.md, "Layers").

dtypes      every dtype the suite knows, declared once (eps, range, exact integers, framework names)
targets     every execution target (cpu, cuda, cuda-tf32, dist-gloo-W), declared once
precision   what an implementation declares about how it computes distances (direct, gram)
batch       one input (`Batch`) and a regression batch that pins a known behaviour (`Regression`)
adapter     the adapter contract: `Adapter` (data plus two small functions), `Output`, `Unavailable`
"""
