"""The G1 humanoid world: MuJoCo room, kinematic base, Unitree DDS peer (see ``world``)."""
