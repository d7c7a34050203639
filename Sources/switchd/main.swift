// switchd: the executable (placeholder until the CLI lands).
import Switch
print("switchd")
