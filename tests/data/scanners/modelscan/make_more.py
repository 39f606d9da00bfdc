import pickle, builtins, webbrowser
class EvalIt:
    def __reduce__(self):
        return (builtins.eval, ("print('rampart-test-payload')",))
class Browse:
    def __reduce__(self):
        return (webbrowser.open, ("http://localhost/rampart-test",))
with open("models/eval_model.pkl", "wb") as f:
    pickle.dump([EvalIt()], f, protocol=4)
with open("models/browser_model.pkl", "wb") as f:
    pickle.dump(Browse(), f, protocol=2)
with open("models/corrupt_model.pkl", "wb") as f:
    f.write(b"\x80\x04\x95\xff\xff\x00\x00garbage-not-a-pickle")
