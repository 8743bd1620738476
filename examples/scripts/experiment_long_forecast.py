# A longer run: 120 steps over about a minute, with a warning now and then — good for watching a
# live log, scrolling up while it runs, or pressing Cancel.
import time

for step in range(1, 121):
    print(f"step {step:3d}/120: day-ahead price forecast for hour {step % 24:02d} ok")
    if step % 25 == 0:
        print(f"WARNING: wind profile for plant {step // 25} is stale, using yesterday's")
    time.sleep(0.5)
print("forecast complete")
