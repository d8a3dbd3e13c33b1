"""Helpers shared by the experiment builders."""
import ml_collections


def component_options(section: ml_collections.ConfigDict, exclude=("name",)) -> dict:
  """A config section's keys other than `exclude`, as keyword options of the component
  the section names (e.g. config.model -> build_model(config.model.name, **options))."""
  return {k: v for k, v in section.items() if k not in exclude}
