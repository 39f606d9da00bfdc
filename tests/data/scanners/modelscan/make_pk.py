import pickle, zipfile, io, os
# a pickle referencing an unknown class: GLOBAL opcode by hand
data = b"\x80\x02cmylib.layers\nCustomLayer\nq\x00)\x81q\x01."
with open("models/custom_layer.pkl", "wb") as f:
    f.write(data)
class Evil:
    def __reduce__(self):
        return (os.system, ("echo rampart-test-payload",))
buf = pickle.dumps({"w": Evil()}, protocol=2)
with zipfile.ZipFile("models/torch_like.pt", "w") as z:
    z.writestr("archive/data.pkl", buf)
    z.writestr("archive/version", "3\n")
