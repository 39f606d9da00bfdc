import os, pickle, json, struct
class Evil:
    def __reduce__(self):
        return (os.system, ("echo rampart-test-payload",))
with open("models/evil_model.pkl", "wb") as f:
    pickle.dump({"weights": [0.1, 0.2], "hook": Evil()}, f, protocol=2)
# safe pickle too
with open("models/safe_dict.pkl", "wb") as f:
    pickle.dump({"weights": [0.1, 0.2]}, f, protocol=4)
from safetensors.numpy import save_file
import numpy as np
save_file({"w": np.arange(4, dtype=np.float32)}, "models/safe_model.safetensors")
