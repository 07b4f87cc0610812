-- Argo CD health of a continuum.dev/v1alpha1 TrainingJob (Lua 5.1, as Argo CD runs it).
-- Reads status.phase and the kstatus conditions the operator writes; see deploy/argocd/README.md.
--   Succeeded            -> Healthy (also when the model failed its gate: the run worked, the
--                           champion keeps serving; the message says "not qualified")
--   Failed, Stalled=True -> Degraded
--   no status yet, Pending, Running, a spec the operator has not observed -> Progressing
local hs = {}

local function condition(status, kind)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function text(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to start the training Job"
  return hs
end

if status.phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = status.message or text(condition(status, "Ready"), "Training succeeded")
  return hs
end

local stalled = condition(status, "Stalled")
if status.phase == "Failed" or (stalled ~= nil and stalled.status == "True") then
  hs.status = "Degraded"
  hs.message = status.message or text(stalled, "Training failed")
  return hs
end

hs.status = "Progressing"
hs.message = text(condition(status, "Reconciling"), status.phase)
return hs
