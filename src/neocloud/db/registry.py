"""Imports every model module so that `Base.metadata` knows every table."""

from neocloud.auth import models as auth_models
from neocloud.billing import models as billing_models
from neocloud.capacity import models as capacity_models
from neocloud.contracts import models as contract_models
from neocloud.db.base import Base
from neocloud.engines import models as engine_models
from neocloud.fleet import models as fleet_models
from neocloud.metering import models as metering_models
from neocloud.placement import job_models
from neocloud.placement import models as placement_models
from neocloud.planning import models as planning_models
from neocloud.tenants import models as tenant_models

__all__ = [
    "Base",
    "auth_models",
    "billing_models",
    "capacity_models",
    "contract_models",
    "engine_models",
    "fleet_models",
    "job_models",
    "metering_models",
    "placement_models",
    "planning_models",
    "tenant_models",
]

metadata = Base.metadata
