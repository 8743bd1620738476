# /// script
# requires-python = ">=3.9"
# dependencies = ["sr-wind==1.0.0"]
# ///
# Hub-height wind speed for each plant from its 10 m mast, with a package the script declares above
# (PEP 723): the runner installs sr-wind from the demo's local wheelhouse before the first run and
# reuses that environment afterwards.
import sr_wind

PLANTS = {
    "Nordsee Ost": (8.2, 0.0002),
    "Hohe See": (9.1, 0.0002),
    "Brandenburg Süd": (5.4, 0.1),
    "Eifel Höhe": (6.0, 0.3),
}

print(f"sr-wind {sr_wind.__version__}: log-law profile")
for plant, (speed_10m, roughness) in PLANTS.items():
    print(f"{plant}: {sr_wind.speed_at(120, speed_10m, roughness):.2f} m/s at 120 m (10 m mast: {speed_10m} m/s)")
print("Wind profiles written for each plant")
