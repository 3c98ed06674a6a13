// Bell state without measurements: input of `qrmi-gen estimator` (OpenQASM 2 works too).
OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
h q[0];
cx q[0], q[1];
